//! Helpers for the processor's tests: a private database, topics, fan-out channel and
//! consumer group per test, the `processor` binary as a child process, records in the
//! api-server's format, and a Redis subscriber that counts broadcasts.

#![allow(dead_code)] // Each test binary uses a different part.

use std::future::Future;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use herald_core::db::Db;
use herald_core::event::{Event, headers};
use herald_core::notification::{NewNotification, NotificationType};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Everything one test's processors share.
pub struct Env {
    pub db: Db,
    pub database_url: String,
    pub brokers: String,
    pub topic: String,
    pub dlq: String,
    pub group: String,
    pub channel: String,
    pub redis_url: String,
    pub logs: tempfile::TempDir,
}

impl Env {
    /// A fresh PostgreSQL database of the test environment, and a topic with `partitions`.
    pub async fn new(partitions: i32) -> Self {
        let database = test_support::test_database().await;
        Self::with_database(database.url, partitions).await
    }

    pub async fn with_database(database_url: String, partitions: i32) -> Self {
        let db = Db::connect(&database_url, 10).await.expect("connect");
        db.migrate().await.expect("migrate");
        let topic = test_support::kafka_topic(partitions).await;
        Self {
            db,
            database_url,
            dlq: format!("{}.dlq", topic.name),
            brokers: topic.brokers,
            topic: topic.name,
            group: test_support::unique_name("group"),
            channel: test_support::unique_name("fanout"),
            redis_url: test_support::settings().redis_url.clone(),
            logs: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// `processor <args>` configured for this test through the environment, as Kubernetes
    /// would configure it.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_processor"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("DATABASE_MAX_CONNECTIONS", "4")
            .env("REDIS_URL", &self.redis_url)
            .env("FANOUT_CHANNEL", &self.channel)
            .env("KAFKA_BROKERS", &self.brokers)
            .env("KAFKA_NOTIFICATIONS_TOPIC", &self.topic)
            .env("KAFKA_DEAD_LETTER_TOPIC", &self.dlq)
            .env("KAFKA_GROUP_ID", &self.group)
            // A killed consumer's partitions move on after 6 s instead of 45 s; the lag
            // gauge is refreshed every half second.
            .env(
                "KAFKA_PROPERTIES",
                "session.timeout.ms=6000,heartbeat.interval.ms=1000,statistics.interval.ms=500",
            )
            .env("LOG_FORMAT", "json");
        command
    }

    /// Starts `processor consume`; its output goes to a log file named `name`.
    pub fn consume(&self, name: &str, metrics_port: u16, extra: &[&str]) -> Child {
        let log = self.logs.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut args = vec!["consume", "--commit-interval-ms", "200"];
        args.extend_from_slice(extra);
        self.command(&args)
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("LOG_LEVEL", "info")
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("spawn processor")
    }

    /// What the processor started as `name` has logged.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Runs `processor <args>` to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run processor")
    }

    /// Creates `count` notifications (every third for a user, the rest broadcasts) and
    /// returns their `notification.created` events.
    pub async fn create(&self, count: usize) -> Vec<Event> {
        let mut events = Vec::with_capacity(count);
        for i in 0..count {
            let user = (i % 3 == 0).then(|| format!("user-{}", i % 7));
            let new = NewNotification::new(format!("n{i}"), NotificationType::Info, user, None)
                .expect("valid");
            let created = self
                .db
                .create_notification(&new, None, None)
                .await
                .expect("create");
            events.push(created.event.expect("event"));
        }
        events
    }

    /// Like [`Env::create`], eight at a time, for large numbers.
    pub async fn create_many(&self, count: usize) -> Vec<Event> {
        futures::stream::iter(0..count)
            .map(|i| async move {
                let new = NewNotification::new(format!("n{i}"), NotificationType::Info, None, None)
                    .expect("valid");
                let created = self
                    .db
                    .create_notification(&new, None, None)
                    .await
                    .expect("create");
                created.event.expect("event")
            })
            .buffered(8)
            .collect()
            .await
    }

    pub fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "5")
            .create()
            .expect("producer")
    }

    /// Produces events as the api-server's outbox relay does.
    pub async fn produce(&self, events: &[Event]) {
        let producer = self.producer();
        for chunk in events.chunks(500) {
            let sends = chunk.iter().map(|event| {
                let key = event.notification_id.to_string();
                let payload = serde_json::to_vec(event).expect("json");
                let id = event.id.to_string();
                let producer = &producer;
                async move {
                    let headers = OwnedHeaders::new()
                        .insert(Header {
                            key: headers::EVENT_ID,
                            value: Some(&id),
                        })
                        .insert(Header {
                            key: headers::EVENT_TYPE,
                            value: Some(event.kind.as_str()),
                        })
                        .insert(Header {
                            key: headers::TRACEPARENT,
                            value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                        });
                    producer
                        .send(
                            FutureRecord::to(&self.topic)
                                .key(&key)
                                .payload(&payload)
                                .headers(headers),
                            Duration::from_secs(10),
                        )
                        .await
                        .expect("produce");
                }
            });
            futures::future::join_all(sends).await;
        }
    }

    pub async fn produce_raw(&self, key: &str, payload: &[u8]) {
        self.producer()
            .send(
                FutureRecord::to(&self.topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }

    pub async fn delivered(&self) -> i64 {
        self.count("SELECT COUNT(*) FROM notifications WHERE status = 'delivered'")
            .await
    }

    /// Delivered notifications, or `None` while the database does not answer.
    pub async fn try_delivered(&self) -> Option<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE status = 'delivered'")
            .fetch_one(self.db.pool())
            .await
            .ok()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(self.db.pool())
            .await
            .expect("count")
    }

    /// `dlq list --json`, parsed.
    pub fn dlq_list(&self) -> Vec<serde_json::Value> {
        let output = self.run(&["dlq", "list", "--json"]);
        assert!(output.status.success(), "dlq list: {output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|value| value.get("sourceTopic").is_some())
            .collect()
    }
}

/// Every event published on a fan-out channel.
pub struct Broadcasts {
    received: Arc<Mutex<Vec<Event>>>,
}

impl Broadcasts {
    pub async fn subscribe(redis_url: &str, channel: &str) -> Self {
        let client = redis::Client::open(redis_url).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("pubsub");
        pubsub.subscribe(channel).await.expect("subscribe");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let event: Event =
                    serde_json::from_slice(message.get_payload_bytes()).expect("an event");
                sink.lock().expect("lock").push(event);
            }
        });
        Self { received }
    }

    pub fn events(&self) -> Vec<Event> {
        self.received.lock().expect("lock").clone()
    }

    pub fn len(&self) -> usize {
        self.received.lock().expect("lock").len()
    }
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Sends SIGTERM and waits for the exit; returns whether it exited 0.
pub fn terminate(child: &mut Child) -> bool {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.success();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the processor did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The body of `/metrics` on `port`, waiting up to 10 s for the server to listen.
pub async fn metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The processor may still be starting.
    let mut attempts = 0;
    let mut stream = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => break stream,
            Err(_) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("connecting to /metrics on port {port}: {error}"),
        }
    };
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the sample `name` (with labels, exactly as rendered), or 0.
pub fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}
