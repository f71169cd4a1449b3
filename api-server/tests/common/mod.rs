//! Shared by the api-server's integration tests: runs the real `api-server` binary as a child
//! process and talks to it over HTTP.
//!
//! ```ignore
//! mod common;
//! let backing = common::Backing::real().await;          // fresh PostgreSQL database + Redis
//! let server = common::Server::start(&backing, &[]).await; // waits for /api/health
//! let created = server.create(json!({"message": "hi", "type": "info"})).await;
//! let metrics = server.metrics().await;
//! // `Server::embedded(&[])` runs embedded mode (SQLite in a temporary directory, no Redis).
//! ```
//!
//! Each test binary includes this module and uses a part of it, so unused items are expected.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

/// Generous bound on start-up, so a broken server fails the test instead of hanging it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The external components one or more servers of a test share.
pub struct Backing {
    /// A PostgreSQL database of this test's own (`database.url`, `database.pool`).
    pub database: test_support::TestDatabase,
    pub redis_url: String,
    /// Unique per test, so parallel tests do not receive each other's events.
    pub fanout_channel: String,
}

impl Backing {
    /// A fresh PostgreSQL database and a fan-out channel of its own on the test Redis.
    pub async fn real() -> Self {
        Self {
            database: test_support::test_database().await,
            redis_url: test_support::settings().redis_url.clone(),
            fanout_channel: test_support::unique_name("herald-test"),
        }
    }
}

/// A running `api-server` process, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub port: u16,
    /// Holds the log file (and, in embedded mode, the SQLite database).
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Server {
    /// Starts a server on the real PostgreSQL and Redis of `backing`, without Kafka.
    /// `env` adds or overrides variables (e.g. `("STREAM_BUFFER", "16")`).
    pub async fn start(backing: &Backing, env: &[(&str, &str)]) -> Self {
        let mut vars = vec![
            ("DATABASE_URL", backing.database.url.as_str()),
            ("REDIS_URL", backing.redis_url.as_str()),
            ("FANOUT_CHANNEL", backing.fanout_channel.as_str()),
        ];
        vars.extend_from_slice(env);
        Self::spawn(&vars).await
    }

    /// Starts a server in embedded mode: SQLite in a temporary directory, in-process cache and
    /// fan-out.
    pub async fn embedded(env: &[(&str, &str)]) -> Self {
        Self::spawn(env).await
    }

    async fn spawn(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("creating the log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_api-server"));
        // The test's own environment may point at the test components; the server gets only
        // what the test asks for.
        for key in [
            "DATABASE_URL",
            "REDIS_URL",
            "KAFKA_BROKERS",
            "FANOUT_CHANNEL",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            command.env_remove(key);
        }
        command
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("HERALD_DATA_DIR", dir.path().join("data"))
            .env("LOG_FORMAT", "text")
            // Most tests are about something else; tests/auth turns both back on.
            .env("HERALD_INSECURE_NO_AUTH", "true")
            .env("RATE_LIMIT_CONNECT", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().expect("starting the api-server binary");
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            client: reqwest::Client::new(),
        };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&mut self) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "api-server exited with {status} during start-up:\n{}",
                    self.log()
                );
            }
            if let Ok(response) = self.client.get(self.url("/api/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "api-server did not answer /api/health within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited with 0.
    pub async fn terminate(&mut self) -> bool {
        let pid = self
            .child
            .id()
            .expect("the api-server is running")
            .to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let status = tokio::time::timeout(START_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("api-server did not exit after SIGTERM:\n{}", self.log()))
            .expect("waiting for the api-server");
        status.success()
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the api-server is running")
    }

    /// `base` + `path`.
    /// The server's `HERALD_DATA_DIR` (embedded mode: its SQLite database).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A directory of this server's to put files in (keys, secrets).
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `ws://127.0.0.1:PORT` + `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// POSTs a notification and returns the created notification; fails the test unless 201.
    pub async fn create(&self, body: Value) -> Value {
        let response = self
            .client
            .post(self.url("/api/notifications"))
            .json(&body)
            .send()
            .await
            .expect("POST /api/notifications");
        let status = response.status();
        let text = response.text().await.expect("reading the POST response");
        assert_eq!(
            status, 201,
            "POST /api/notifications answered {status}: {text}"
        );
        serde_json::from_str(&text).expect("the POST response is JSON")
    }

    /// GETs `path` and returns its JSON body; fails the test unless the answer is 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("reading the response");
        assert_eq!(status, 200, "GET {path} answered {status}: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {text}"))
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("reading /metrics")
    }

    /// The value of one sample of `/metrics`, e.g.
    /// `metric("herald_slow_consumer_disconnects_total{transport=\"websocket\"}")`; 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap_or(0.0))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- api-server log ({}) ---\n{}", self.base, self.log());
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("finding a free port")
}
