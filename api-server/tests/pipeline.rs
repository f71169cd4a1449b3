//! The whole pipeline on the real components: POST to the api-server -> outbox relay ->
//! Kafka -> `processor consume` -> status event fanned out through Redis -> a WebSocket
//! client of the api-server receives the notification with status `delivered`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Backing, Server};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The processor binary of the same build: `cargo test --workspace` builds it next to ours.
fn processor_binary() -> PathBuf {
    let mut path = std::env::current_exe().expect("the test binary's path");
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    let binary = path.join("processor");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p processor` (scripts/test does)",
        binary.display()
    );
    binary
}

#[tokio::test]
async fn a_posted_notification_reaches_a_websocket_client_as_delivered() {
    let topic = test_support::kafka_topic(3).await;
    let backing = Backing::real().await;
    let dead_letters = test_support::unique_name("dlq");
    let server = Server::start(
        &backing,
        &[
            ("KAFKA_BROKERS", &topic.brokers),
            ("KAFKA_NOTIFICATIONS_TOPIC", &topic.name),
        ],
    )
    .await;

    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut processor = tokio::process::Command::new(processor_binary())
        .arg("consume")
        .env("DATABASE_URL", &backing.database.url)
        .env("REDIS_URL", &backing.redis_url)
        .env("FANOUT_CHANNEL", &backing.fanout_channel)
        .env("KAFKA_BROKERS", &topic.brokers)
        .env("KAFKA_NOTIFICATIONS_TOPIC", &topic.name)
        .env("KAFKA_DEAD_LETTER_TOPIC", &dead_letters)
        .env("KAFKA_GROUP_ID", test_support::unique_name("group"))
        .env("METRICS_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "text")
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting processor consume");

    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/api/ws"))
        .await
        .expect("WebSocket connect");
    let mut next_frame = async || -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
                .await
                .expect("a frame within 60 s")
                .expect("the socket stays open")
                .expect("a frame");
            if let Message::Text(text) = message {
                return serde_json::from_str(&text).expect("JSON frame");
            }
        }
    };
    assert_eq!(
        next_frame().await["type"],
        "recovered",
        "the stream is live"
    );

    let created = server
        .create(json!({"message": "end to end", "type": "success", "userId": "carol"}))
        .await;
    let mut created_seen = false;
    let delivered = loop {
        let frame = next_frame().await;
        if frame["notification"]["id"] != created["id"] {
            continue;
        }
        match frame["type"].as_str() {
            Some("notification") => created_seen = true,
            Some("notification.updated") => break frame,
            other => panic!("unexpected frame type {other:?}: {frame}"),
        }
    };
    let log_text = || std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(created_seen, "the created event came first");
    assert_eq!(
        delivered["notification"]["status"],
        "delivered",
        "{}",
        log_text()
    );
    assert!(delivered["sequence"].as_i64() > created["sequence"].as_i64());

    let stored: Value = server
        .get_json(&format!(
            "/api/notifications/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(stored["status"], "delivered");
    assert!(
        processor.try_wait().expect("status").is_none(),
        "the processor keeps running: {}",
        log_text()
    );
}
