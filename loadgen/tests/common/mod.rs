//! Runs the real binaries for loadgen's tests: the `loadgen` under test, and an embedded-mode
//! `api-server` (SQLite in a temporary directory, in-process cache, fan-out and processor) or
//! `loadgen ceiling-server` to load.
//!
//! api-server is a binary of another package, so Cargo gives no `CARGO_BIN_EXE_api-server`
//! here. It is taken from the same target directory as this test (`<target>/debug/deps/..`),
//! where `cargo test --workspace` or `cargo build -p api-server` puts it; the tests fail with
//! that instruction if it is missing. A stale binary tests an old server: build it first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous bound on start-up, so a broken server fails the test instead of hanging it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process on 127.0.0.1, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    /// The api-server's development API key (admin), which loadgen sends with `--token`;
    /// empty for the other servers.
    pub token: String,
    dir: PathBuf,
}

impl Server {
    /// The api-server in embedded mode.
    pub fn embedded_api() -> Self {
        let binary = api_server_binary();
        let port = free_port();
        let dir = temp_dir("api");
        let mut command = Command::new(binary);
        for key in [
            "DATABASE_URL",
            "REDIS_URL",
            "KAFKA_BROKERS",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            command.env_remove(key);
        }
        command
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("HERALD_DATA_DIR", dir.join("data"))
            .env("LOG_FORMAT", "text")
            // Authentication stays on (the development key); a fan-out opens its clients at once.
            .env("RATE_LIMIT_CONNECT", "0");
        let mut server = Self::spawn(command, port, dir, "/api/health");
        let key = server.dir.join("data/dev-api-key");
        server.token = std::fs::read_to_string(&key)
            .unwrap_or_else(|e| panic!("reading {}: {e}", key.display()))
            .trim()
            .to_owned();
        server
    }

    /// `loadgen ceiling-server`.
    pub fn ceiling() -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
        command.args([
            "ceiling-server",
            "--port",
            &port.to_string(),
            "--duration",
            "5m",
        ]);
        Self::spawn(command, port, temp_dir("ceiling"), "/")
    }

    fn spawn(mut command: Command, port: u16, dir: PathBuf, health: &str) -> Self {
        let log = std::fs::File::create(dir.join("server.log")).expect("creating the log");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .expect("starting the server");
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token: String::new(),
            dir,
        };
        server.wait_healthy(port, health);
        server
    }

    fn wait_healthy(&mut self, port: u16, path: &str) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the server exited with {status} during start-up:\n{}",
                    self.log()
                );
            }
            if http_get_status(port, path) == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not answer {path} within {START_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server log ({}) ---\n{}", self.url, self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `loadgen ARGS --json` and returns its report; fails the test unless it exits 0.
pub fn loadgen_json(args: &[&str]) -> Value {
    let output = loadgen(&[args, &["--json"]].concat());
    assert!(
        output.status.success(),
        "loadgen {args:?} failed with {}:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "loadgen {args:?} printed no JSON report ({error}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .env_remove("LOADGEN_URL")
        .output()
        .expect("running loadgen")
}

fn api_server_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/<test> -> <target>/<profile>/api-server
    let binary = test
        .parent()
        .and_then(Path::parent)
        .map(|profile| profile.join("api-server"))
        .expect("the test runs from <target>/<profile>/deps");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p api-server` (or `cargo test --workspace`) before \
         loadgen's tests",
        binary.display()
    );
    binary
}

fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "loadgen-test-{kind}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("finding a free port")
}

/// The status of `GET path` with HTTP/1.0 (the connection closes after the answer).
fn http_get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}
