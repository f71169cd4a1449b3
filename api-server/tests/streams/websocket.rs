use crate::broadcast;
use crate::clients::{RawHttp, WsClient, within};
use crate::common::{Backing, Server};

#[tokio::test]
async fn a_created_notification_arrives_as_a_websocket_frame() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut ws = WsClient::connect(&server.ws_url("/api/ws")).await;
    let recovered = ws.expect("recovered").await;
    assert_eq!(recovered["complete"], true);

    let created = server.create(broadcast("hello over WebSocket")).await;
    let frame = ws.expect("notification").await;
    assert_eq!(frame["sequence"], created["sequence"]);
    assert_eq!(frame["notification"], created);
    ws.close().await;
}

#[tokio::test]
async fn resuming_with_since_replays_the_missed_frames_once() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut sequences = Vec::new();
    for n in 0..4 {
        let created = server.create(broadcast(&format!("missed {n}"))).await;
        sequences.push(created["sequence"].as_i64().unwrap());
    }
    let mut ws =
        WsClient::connect(&server.ws_url(&format!("/api/ws?since={}", sequences[0]))).await;
    for expected in &sequences[1..] {
        assert_eq!(ws.expect("notification").await["sequence"], *expected);
    }
    let recovered = ws.expect("recovered").await;
    assert_eq!(recovered["complete"], true);
    assert!(recovered["lastSequence"].as_i64().unwrap() >= sequences[3]);
    let live = server.create(broadcast("live")).await;
    assert_eq!(
        ws.expect("notification").await["sequence"],
        live["sequence"]
    );
    ws.close().await;
}

#[tokio::test]
async fn a_gap_older_than_the_log_gets_a_reset_instead_of_a_silent_skip() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut sequences = Vec::new();
    for n in 0..4 {
        let created = server.create(broadcast(&format!("old {n}"))).await;
        sequences.push(created["sequence"].as_i64().unwrap());
    }
    // What the cleanup job does to old events.
    sqlx::query("DELETE FROM events WHERE sequence <= $1")
        .bind(sequences[2])
        .execute(&backing.database.pool)
        .await
        .expect("deleting old events");

    let mut ws =
        WsClient::connect(&server.ws_url(&format!("/api/ws?since={}", sequences[0]))).await;
    let reset = ws.expect("reset").await;
    assert!(
        reset["lastSequence"].as_i64().unwrap() >= sequences[3],
        "{reset}"
    );
    let recovered = ws.expect("recovered").await;
    assert_eq!(recovered["complete"], false);
    let live = server.create(broadcast("after the reset")).await;
    assert_eq!(ws.expect("notification").await["notification"], live);

    // A position beyond the log (another database, say) is reset too.
    let mut ws = WsClient::connect(&server.ws_url("/api/ws?since=999999")).await;
    let reset = ws.expect("reset").await;
    assert!(reset["lastSequence"].as_i64().unwrap() >= live["sequence"].as_i64().unwrap());
    assert_eq!(ws.expect("recovered").await["complete"], false);
}

#[tokio::test]
async fn a_plain_get_on_the_websocket_endpoint_is_a_json_error() {
    let server = Server::embedded(&[]).await;
    let response = server
        .client()
        .get(server.url("/api/ws"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "websocket_required");
}

#[tokio::test]
async fn the_server_pings_every_keep_alive_interval() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let server = Server::embedded(&[("STREAM_KEEPALIVE_SECONDS", "1")]).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/api/ws"))
        .await
        .unwrap();
    let mut pings = 0;
    let read = async {
        while pings < 2 {
            match socket.next().await.expect("the socket stays open").unwrap() {
                Message::Ping(_) => pings += 1,
                Message::Text(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("two pings within 10 s");
}

/// The socket of a WebSocket leaves hyper after the 101, on a fresh connection as on one that
/// served other requests first.
#[tokio::test]
async fn websockets_work_as_a_connections_first_request_and_after_others() {
    let server = Server::embedded(&[]).await;
    let mut first = RawHttp::connect(server.port).await;
    first.upgrade("/api/ws").await;
    let mut after = RawHttp::connect(server.port).await;
    after.get("/api/health").await;
    after.read_until("\"status\"").await;
    after.upgrade("/api/ws").await;
    for socket in [&mut first, &mut after] {
        let text = socket.read_until("\"type\":\"recovered\"").await;
        let head = text.to_ascii_lowercase();
        assert!(
            head.contains("http/1.1 101 switching protocols\r\n"),
            "{text}"
        );
        // The RFC's example answer to its example key.
        assert!(
            head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
            "{text}"
        );
    }
    let created = server.create(broadcast("to both")).await;
    let frame = format!(
        "\"type\":\"notification\",\"sequence\":{}",
        created["sequence"]
    );
    for socket in [&mut first, &mut after] {
        socket.read_until(&frame).await;
    }
}

#[tokio::test]
async fn pings_are_answered_and_a_close_is_echoed() {
    let server = Server::embedded(&[]).await;
    let mut ws = WsClient::connect(&server.ws_url("/api/ws")).await;
    ws.expect("recovered").await;
    assert_eq!(ws.ping(b"still there?").await, b"still there?");
    let created = server.create(broadcast("after the ping")).await;
    assert_eq!(
        ws.expect("notification").await["sequence"],
        created["sequence"]
    );
    let close = ws
        .close_with(4000)
        .await
        .expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 4000);
}

#[tokio::test]
async fn a_bad_websocket_version_is_a_json_error_naming_the_header() {
    let server = Server::embedded(&[]).await;
    let mut socket = RawHttp::connect(server.port).await;
    socket
        .send(
            "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\r\n",
        )
        .await;
    let text = socket.read_until("}}").await;
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains(r#""code":"websocket_required""#), "{text}");
    assert!(text.contains("Sec-WebSocket-Version"), "{text}");
}

/// Clients only send control frames; a client that streams data at the server has it skipped
/// without being buffered, and neither it nor anyone else stops receiving.
#[tokio::test]
async fn a_client_flooding_the_server_with_data_still_receives_and_so_do_others() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = Server::embedded(&[]).await;
    let mut live = WsClient::connect(&server.ws_url("/api/ws")).await;
    live.expect("recovered").await;
    let mut flooding = RawHttp::connect(server.port).await;
    flooding.upgrade("/api/ws").await;
    flooding.read_until("\"type\":\"recovered\"").await;
    let (mut reader, mut writer) = flooding.into_socket().into_split();

    // One 64 MiB text frame, written without pause.
    const LENGTH: u64 = 64 << 20;
    let flood = tokio::spawn(async move {
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&LENGTH.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        writer.write_all(&header).await?;
        let block = vec![b'x'; 64 << 10];
        for _ in 0..LENGTH / block.len() as u64 {
            writer.write_all(&block).await?;
        }
        std::io::Result::Ok(writer)
    });
    let created = server.create(broadcast("during the flood")).await;
    assert_eq!(
        live.expect("notification").await["sequence"],
        created["sequence"]
    );
    let frame = format!("\"sequence\":{}", created["sequence"]);
    let mut received = Vec::new();
    within("the flooding client's notification", async {
        while !String::from_utf8_lossy(&received).contains(&frame) {
            assert!(reader.read_buf(&mut received).await.unwrap() > 0, "closed");
        }
    })
    .await;
    let _writer = within("the whole flood to be taken", flood)
        .await
        .unwrap()
        .expect("the server read the whole frame");
}
