use serde_json::json;

use crate::clients::{
    SocketIoClient, WsClient, WsItem, stalled_socket_io, stalled_socket_io_polling, within,
};
use crate::common::{Backing, Server};

/// Large enough that a client that does not read fills the socket buffers quickly.
const MESSAGE_CHARS: usize = 4000;
const BATCH: usize = 100;
const MAX_NOTIFICATIONS: usize = 5000;
const WS_DISCONNECTS: &str = "herald_slow_consumer_disconnects_total{transport=\"websocket\"}";
const SOCKET_IO_DISCONNECTS: &str =
    "herald_slow_consumer_disconnects_total{transport=\"socketio\"}";
const SSE_DISCONNECTS: &str = "herald_slow_consumer_disconnects_total{transport=\"sse\"}";

/// An SSE request on a raw socket that is then never read. HTTP/1.1 streams are served
/// straight on the socket, HTTP/1.0 ones by hyper: each has its own slow-consumer check.
async fn stalled_sse(port: u16, version: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    socket
        .write_all(
            format!("GET /api/sse/notifications HTTP/{version}\r\nHost: 127.0.0.1:{port}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("request");
    socket
}

#[tokio::test]
async fn stalled_clients_are_disconnected_while_live_ones_receive_everything() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[("STREAM_BUFFER", "32")]).await;
    let mut stalled_ws = WsClient::connect(&server.ws_url("/api/ws")).await;
    // Socket.IO on a WebSocket is served on the shards, on long-polling by a task per
    // session: one stalled client each.
    let stalled_socket_io = stalled_socket_io(server.port).await;
    stalled_socket_io_polling(&server).await;
    let mut stalled_direct = stalled_sse(server.port, "1.1").await;
    let mut stalled_sse_by_hyper = stalled_sse(server.port, "1.0").await;
    let mut live_ws = WsClient::connect(&server.ws_url("/api/ws")).await;
    live_ws.expect("recovered").await;
    let mut live_socket_io = SocketIoClient::connect(&server.base, None).await;
    live_socket_io.expect("connect").await;
    live_socket_io.expect("recovered").await;

    // The live clients read everything as it comes, until told how many to expect.
    let (total_tx, total_rx) = tokio::sync::watch::channel(None::<usize>);
    let ws_reader = tokio::spawn({
        let mut total_rx = total_rx.clone();
        async move {
            let mut sequences = Vec::new();
            while total_rx
                .borrow()
                .is_none_or(|total| sequences.len() < total)
            {
                tokio::select! {
                    item = live_ws.next() => match item {
                        WsItem::Frame(frame) if frame["type"] == "notification" => {
                            sequences.push(frame["sequence"].as_i64().unwrap());
                        }
                        WsItem::Frame(_) => {}
                        WsItem::Closed(close) => panic!("the live WebSocket was closed: {close:?}"),
                    },
                    _ = total_rx.changed() => {}
                }
            }
            sequences
        }
    });
    let socket_io_reader = tokio::spawn({
        let mut total_rx = total_rx.clone();
        async move {
            let mut sequences = Vec::new();
            while total_rx
                .borrow()
                .is_none_or(|total| sequences.len() < total)
            {
                tokio::select! {
                    event = live_socket_io.next() => match event {
                        Some(event) if event["event"] == "notification" => {
                            sequences.push(event["args"][1].as_i64().unwrap());
                        }
                        Some(event) if event["event"] == "disconnect" => {
                            panic!("the live Socket.IO client was disconnected: {event}");
                        }
                        Some(_) => {}
                        None => panic!("the live Socket.IO client exited"),
                    },
                    _ = total_rx.changed() => {}
                }
            }
            live_socket_io.close().await;
            sequences
        }
    });

    // Flood until both stalled clients are counted, in batches (bounded either way).
    let message = "x".repeat(MESSAGE_CHARS);
    let mut posted = Vec::new();
    while server.metric(WS_DISCONNECTS).await < 1.0
        || server.metric(SOCKET_IO_DISCONNECTS).await < 2.0
        || server.metric(SSE_DISCONNECTS).await < 2.0
    {
        assert!(
            posted.len() < MAX_NOTIFICATIONS,
            "{MAX_NOTIFICATIONS} notifications did not get every stalled client disconnected:\n{}",
            server.metrics().await
        );
        for _ in 0..BATCH {
            let created = server
                .create(json!({"message": message, "type": "info"}))
                .await;
            posted.push(created["sequence"].as_i64().unwrap());
        }
    }
    total_tx.send(Some(posted.len())).unwrap();
    let received = within("the live WebSocket's deliveries", ws_reader)
        .await
        .unwrap();
    assert_eq!(
        received, posted,
        "the live WebSocket got every notification, in order, once"
    );
    let received = within("the live Socket.IO deliveries", socket_io_reader)
        .await
        .unwrap();
    assert_eq!(
        received, posted,
        "the live Socket.IO client got every notification, in order, once"
    );

    // The stalled WebSocket, reading at last, finds its stream ended short of the flood (with
    // a 1008 close frame if the server could still get one through).
    let mut stalled_got = 0;
    let close = loop {
        match stalled_ws.next().await {
            WsItem::Frame(frame) if frame["type"] == "notification" => stalled_got += 1,
            WsItem::Frame(_) => {}
            WsItem::Closed(close) => break close,
        }
    };
    assert!(stalled_got < posted.len(), "the stalled client was cut off");
    if let Some(frame) = close {
        assert_eq!(u16::from(frame.code), 1008);
        assert_eq!(frame.reason.as_str(), "slow consumer");
    }
    drop(stalled_socket_io);

    // The stalled SSE clients, reading at last, find their connections cut short of the flood.
    for stalled in [&mut stalled_direct, &mut stalled_sse_by_hyper] {
        let mut bytes = Vec::new();
        let cut = within("the end of a stalled SSE connection", async {
            use tokio::io::AsyncReadExt;
            stalled.read_to_end(&mut bytes).await
        })
        .await;
        let events = String::from_utf8_lossy(&bytes)
            .matches("event: notification\n")
            .count();
        assert!(
            events < posted.len(),
            "the stalled SSE client was cut off ({events} of {} events, {cut:?})",
            posted.len()
        );
    }
}
