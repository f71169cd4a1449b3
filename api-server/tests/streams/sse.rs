use crate::clients::{RawHttp, SseClient, within};
use crate::common::{Backing, Server};
use crate::{broadcast, for_user};

fn sse(server: &Server, query: &str) -> reqwest::RequestBuilder {
    server
        .client()
        .get(server.url(&format!("/api/sse/notifications{query}")))
}

#[tokio::test]
async fn a_created_notification_arrives_as_an_sse_event() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut stream = SseClient::open(sse(&server, "")).await;
    let recovered = stream.expect("recovered").await.json();
    assert_eq!(recovered["complete"], true);

    let created = server.create(broadcast("hello over SSE")).await;
    let event = stream.expect("notification").await;
    assert_eq!(event.sequence(), created["sequence"].as_i64().unwrap());
    assert_eq!(
        event.json(),
        created,
        "the data is the notification as POST returned it"
    );
}

#[tokio::test]
async fn reconnecting_replays_exactly_what_was_missed_then_goes_live() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let mut sequences = Vec::new();
    for n in 0..5 {
        let created = server.create(broadcast(&format!("missed {n}"))).await;
        sequences.push(created["sequence"].as_i64().unwrap());
    }

    // ?since= replays everything after it, in order, once.
    let mut stream = SseClient::open(sse(&server, &format!("?since={}", sequences[1]))).await;
    for expected in &sequences[2..] {
        assert_eq!(stream.expect("notification").await.sequence(), *expected);
    }
    let recovered = stream.expect("recovered").await.json();
    assert_eq!(recovered["complete"], true);
    // Status events (the notifications being marked delivered) may come later in the log.
    assert!(recovered["lastSequence"].as_i64().unwrap() >= sequences[4]);
    let live = server.create(broadcast("live")).await;
    assert_eq!(
        stream.expect("notification").await.sequence(),
        live["sequence"].as_i64().unwrap()
    );

    // Last-Event-ID (what a browser sends) wins over ?since=.
    let request = sse(&server, "?since=0").header("Last-Event-ID", sequences[3].to_string());
    let mut stream = SseClient::open(request).await;
    assert_eq!(stream.expect("notification").await.sequence(), sequences[4]);
    assert_eq!(
        stream.expect("notification").await.sequence(),
        live["sequence"].as_i64().unwrap()
    );
    stream.expect("recovered").await;
    let next = server.create(broadcast("after the second replay")).await;
    let event = stream.expect("notification").await;
    assert_eq!(
        event.sequence(),
        next["sequence"].as_i64().unwrap(),
        "no duplicate, no gap"
    );
}

#[tokio::test]
async fn a_user_stream_carries_broadcasts_and_that_users_notifications_only() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    let before = server.create(for_user("earlier for alice", "alice")).await;
    server.create(for_user("earlier for bob", "bob")).await;

    let mut stream = SseClient::open(sse(&server, "?userId=alice&since=0")).await;
    // Replayed events carry the notification as it is now, so compare identities.
    assert_eq!(
        stream.expect("notification").await.json()["id"],
        before["id"]
    );
    stream.expect("recovered").await;
    server.create(for_user("for bob", "bob")).await;
    let everyone = server.create(broadcast("for everyone")).await;
    let alice = server.create(for_user("for alice", "alice")).await;
    assert_eq!(stream.expect("notification").await.json(), everyone);
    assert_eq!(stream.expect("notification").await.json(), alice);
}

#[tokio::test]
async fn bad_stream_parameters_get_a_400_json_error() {
    let server = Server::embedded(&[]).await;
    let cases = [
        ("?since=abc", None, "since"),
        ("?since=-1", None, "since"),
        ("?since=1.5", None, "since"),
        ("?userId=", None, "userId"),
        ("", Some("yesterday"), "Last-Event-ID"),
        ("?since=3", Some("-4"), "Last-Event-ID"),
    ];
    for (query, last_event_id, field) in cases {
        let mut request = sse(&server, query);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("GET SSE");
        assert_eq!(response.status(), 400, "{query} {last_event_id:?}");
        let body: serde_json::Value = response.json().await.expect("a JSON error body");
        assert_eq!(
            body["error"]["field"], field,
            "{query} {last_event_id:?}: {body}"
        );
    }
    // The same parameters are checked on the WebSocket endpoint, before any upgrade.
    let response = server
        .client()
        .get(server.url("/api/ws?since=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "since");
}

#[tokio::test]
async fn embedded_mode_streams_replay_and_go_live() {
    let server = Server::embedded(&[]).await;
    let first = server.create(broadcast("stored before")).await;
    let mut stream = SseClient::open(sse(&server, "?since=0")).await;
    assert_eq!(
        stream.expect("notification").await.json()["id"],
        first["id"]
    );
    stream.expect("recovered").await;
    let live = server.create(broadcast("live in embedded mode")).await;
    assert_eq!(stream.expect("notification").await.json(), live);
}

#[tokio::test]
async fn shutdown_tells_stream_clients_to_reconnect_and_exits_cleanly() {
    let backing = Backing::real().await;
    let mut server = Server::start(&backing, &[]).await;
    let mut sse_stream = SseClient::open(sse(&server, "")).await;
    sse_stream.expect("recovered").await;
    let mut ws = crate::clients::WsClient::connect(&server.ws_url("/api/ws")).await;
    ws.expect("recovered").await;

    assert!(
        server.terminate().await,
        "api-server exited non-zero:\n{}",
        server.log()
    );
    let shutdown = sse_stream.expect("shutdown").await;
    assert!(
        shutdown.retry.is_some(),
        "shutdown tells browsers when to reconnect"
    );
    assert!(
        sse_stream.next().await.is_none(),
        "the stream ends after `shutdown`"
    );
    match ws.next().await {
        crate::clients::WsItem::Closed(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1012);
            assert_eq!(frame.reason.as_str(), "service restart");
        }
        other => panic!("expected a 1012 close, got {other:?}"),
    }
}

#[tokio::test]
async fn the_stream_endpoints_are_in_the_openapi_document() {
    let server = Server::embedded(&[]).await;
    let document: serde_json::Value = server
        .client()
        .get(server.url("/api/openapi.json"))
        .send()
        .await
        .expect("GET /api/openapi.json")
        .json()
        .await
        .expect("an OpenAPI JSON document");
    let sse = &document["paths"]["/api/sse/notifications"]["get"];
    assert!(
        sse["responses"]["200"]["content"]["text/event-stream"].is_object(),
        "{sse}"
    );
    let parameters: Vec<&str> = sse["parameters"]
        .as_array()
        .expect("SSE parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        parameters,
        ["since", "userId", "access_token", "Last-Event-ID"]
    );
    assert_eq!(
        sse["security"][2]["accessTokenQuery"],
        serde_json::json!([]),
        "{sse}"
    );
    assert!(document["paths"]["/api/ws"]["get"]["responses"]["101"].is_object());
}

#[tokio::test]
async fn streams_get_a_keep_alive_comment_every_interval() {
    let server = Server::embedded(&[("STREAM_KEEPALIVE_SECONDS", "1")]).await;
    let mut response = sse(&server, "").send().await.unwrap();
    let mut text = String::new();
    let read = async {
        // After the `recovered` event, two keep-alives: empty comments.
        while text.lines().filter(|line| line.starts_with(':')).count() < 2 {
            let chunk = response.chunk().await.unwrap().expect("the stream goes on");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("no keep-alives within 10 s: {text:?}"));
    assert!(text.starts_with("event: recovered"), "{text:?}");
}

const SSE_CONNECTIONS: &str = "herald_stream_connections{transport=\"sse\"}";

/// The socket of a stream leaves hyper after the response head, on a fresh connection as on
/// one that served other requests first (browsers and proxies reuse connections).
#[tokio::test]
async fn streams_work_as_a_connections_first_request_and_after_others() {
    let server = Server::embedded(&[]).await;
    let mut first = RawHttp::connect(server.port).await;
    first.get("/api/sse/notifications").await;
    let mut after = RawHttp::connect(server.port).await;
    after.get("/api/health").await;
    after.read_until("\"status\"").await;
    after.get("/api/sse/notifications").await;
    for stream in [&mut first, &mut after] {
        let head = stream.read_until("event: recovered").await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains("content-type: text/event-stream\r\n"),
            "{head}"
        );
        assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
        // The socket serves no request after the stream: clients must not pool it.
        assert!(head.contains("connection: close\r\n"), "{head}");
    }

    let created = server.create(broadcast("to both")).await;
    let id = format!("id: {}\n", created["sequence"]);
    for stream in [&mut first, &mut after] {
        let text = stream.read_until(&id).await;
        assert!(text.contains("event: notification\ndata: {"), "{text}");
    }
}

#[tokio::test]
async fn a_client_that_hangs_up_stops_being_counted() {
    // No keep-alive, so nothing is written that could fail instead.
    let server = Server::embedded(&[("STREAM_KEEPALIVE_SECONDS", "3600")]).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = RawHttp::connect(server.port).await;
        stream.get("/api/sse/notifications").await;
        stream.read_until("event: recovered").await;
        streams.push(stream);
    }
    assert_eq!(server.metric(SSE_CONNECTIONS).await, 3.0);
    streams.truncate(1);
    // Noticed from the hang-up itself, with no event sent in between.
    within("the gauge to drop", async {
        while server.metric(SSE_CONNECTIONS).await != 1.0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// HTTP/1.0 has no chunked bodies, so such a stream stays with hyper and ends with the
/// connection.
#[tokio::test]
async fn an_http_1_0_client_gets_the_stream_too() {
    let server = Server::embedded(&[]).await;
    let mut stream = RawHttp::connect(server.port).await;
    stream
        .send("GET /api/sse/notifications HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let head = stream.read_until("event: recovered").await;
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    let created = server.create(broadcast("to HTTP/1.0")).await;
    stream
        .read_until(&format!("id: {}\n", created["sequence"]))
        .await;
}
