//! Authentication and authorization of the real api-server binary: hostile credentials on
//! every surface, users kept apart on every transport (replays included), tokens expiring
//! during a stream, key rotation and revocation, each kind of verification key, and secrets
//! kept out of what the server shows.

#[path = "../common/mod.rs"]
mod common;
// Shared with the streams tests, which use all of it.
#[allow(dead_code, unused_imports)]
#[path = "../streams/clients/mod.rs"]
mod clients;

mod algorithms;
mod browser;
mod expiry;
mod hostile;
mod isolation;
mod keys;
mod limits;
mod secrets;
mod tokens;

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use common::{Backing, Server};

/// The API keys a [`Secured`] server accepts.
pub struct Keys {
    pub publisher: String,
    pub reader: String,
    pub admin: String,
    pub file: PathBuf,
}

/// A server with authentication on: HS256 user tokens ([`tokens::SECRET`], issuer and audience
/// required) and the [`Keys`] in an API keys file.
pub struct Secured {
    pub server: Server,
    pub keys: Keys,
    /// Holds [`tokens::SECRET`]; rewrite it to rotate the secret.
    pub jwt_secret_file: PathBuf,
    _files: tempfile::TempDir,
}

impl Secured {
    /// Embedded mode.
    pub async fn embedded(env: &[(&str, &str)]) -> Self {
        Self::start(None, env).await
    }

    /// On real PostgreSQL and Redis.
    pub async fn real(backing: &Backing, env: &[(&str, &str)]) -> Self {
        Self::start(Some(backing), env).await
    }

    async fn start(backing: Option<&Backing>, env: &[(&str, &str)]) -> Self {
        let files = tempfile::tempdir().unwrap();
        let secret = files.path().join("jwt-secret");
        std::fs::write(&secret, tokens::SECRET).unwrap();
        let keys = Keys {
            publisher: tokens::api_key(1),
            reader: tokens::api_key(2),
            admin: tokens::api_key(3),
            file: files.path().join("api-keys"),
        };
        std::fs::write(
            &keys.file,
            format!(
                "# name scopes key\npublisher publish {}\nreader read:all {}\nops admin {}\n",
                keys.publisher, keys.reader, keys.admin
            ),
        )
        .unwrap();
        let (secret, file) = (
            secret.display().to_string(),
            keys.file.display().to_string(),
        );
        let mut vars = vec![
            ("HERALD_INSECURE_NO_AUTH", "false"),
            ("JWT_SECRET_FILE", secret.as_str()),
            ("JWT_ISSUER", tokens::ISSUER),
            ("JWT_AUDIENCE", tokens::AUDIENCE),
            ("API_KEYS_FILE", file.as_str()),
            ("AUTH_RELOAD_SECONDS", "1"),
            ("RATE_LIMIT_CONNECT", "20"),
        ];
        vars.extend_from_slice(env);
        let server = match backing {
            Some(backing) => Server::start(backing, &vars).await,
            None => Server::embedded(&vars).await,
        };
        Self {
            server,
            keys,
            jwt_secret_file: files.path().join("jwt-secret"),
            _files: files,
        }
    }

    /// `/metrics`, read with the admin key.
    pub async fn metrics(&self) -> String {
        let (server, admin) = (&self.server, &self.keys.admin);
        let request = server
            .client()
            .get(server.url("/metrics"))
            .bearer_auth(admin);
        let response = request.send().await.expect("GET /metrics");
        assert_eq!(response.status(), 200, "GET /metrics with the admin key");
        response.text().await.expect("reading /metrics")
    }

    /// Creates a notification with the publisher key.
    pub async fn publish(&self, body: Value) -> Value {
        let (status, _, created) = call(
            &self.server,
            Method::POST,
            "/api/notifications",
            Some(&self.keys.publisher),
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        created
    }
}

/// The answer to a request: status, headers, JSON body (`null` when there is none).
pub async fn call(
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server.client().request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("a response");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

pub fn for_user(message: &str, user: &str) -> Value {
    json!({"message": message, "type": "info", "userId": user})
}

pub fn broadcast(message: &str) -> Value {
    json!({"message": message, "type": "info"})
}

/// `GET /api/notifications` with `token`: the status and the error code (empty if none).
pub async fn list_as(server: &Server, token: &str) -> (u16, String) {
    let (status, _, body) =
        call(server, Method::GET, "/api/notifications", Some(token), None).await;
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

/// Runs the `api-server` binary to its end, outside any test server: with authentication off
/// and an empty data directory unless `env` says otherwise. Whether it succeeded, and what
/// it printed (stdout, then stderr).
pub async fn run_api_server(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("KAFKA_BROKERS")
        .env("HERALD_INSECURE_NO_AUTH", "true")
        .env("HERALD_DATA_DIR", data.path())
        .env("PORT", "0")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("running api-server");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs `api-server` with these arguments on `server`'s embedded database; its stdout.
pub async fn cli(server: &Server, args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("HERALD_DATA_DIR", server.data_dir())
        .env("LOG_FORMAT", "text")
        .output()
        .await
        .expect("running api-server");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Polls `check` every 200 ms for up to 10 s: until the server's reload picked a change up.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..50 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("{what} did not happen within 10 s");
}
