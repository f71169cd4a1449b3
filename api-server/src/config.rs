//! Command line and environment of the api-server.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use herald_core::config::{DatabaseArgs, KafkaArgs, RedisArgs};
use herald_core::jobs::schedule::ScheduleArgs;
use herald_runtime::telemetry::TelemetryArgs;

use crate::auth::AuthArgs;
use crate::auth::cli::{KeysCommand, TokenArgs};

/// Herald's client-facing service: REST, Server-Sent Events, Socket.IO v4 and WebSocket.
///
/// With no DATABASE_URL, REDIS_URL or KAFKA_BROKERS it runs the whole platform in one process
/// (embedded mode): an SQLite file under --data-dir, an in-process cache and fan-out, and the
/// processor's event handling and batch job schedules in process. Set them to use the real
/// PostgreSQL, Redis and Kafka.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub server: ServerArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the database migrations and exit (they also run at every start).
    Migrate,
    /// Manage the API keys of services (stored hashed in the database).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print a user token signed with JWT_SECRET_FILE (or, in embedded mode, the development
    /// secret): for trying the streams; production tokens come from your identity provider.
    Token(TokenArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Port of the HTTP API and streams (and of /metrics, for admin keys).
    #[arg(long, env = "PORT", default_value_t = 3001, global = true)]
    pub port: u16,

    /// A separate port serving /metrics without credentials, for Prometheus; keep it off the
    /// public network.
    #[arg(long, env = "METRICS_PORT", global = true)]
    pub metrics_port: Option<u16>,

    /// Address to listen on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0", global = true)]
    pub bind: std::net::IpAddr,

    /// Embedded mode: directory of the SQLite database (used when DATABASE_URL is unset).
    #[arg(
        long,
        env = "HERALD_DATA_DIR",
        default_value = "herald-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// How long a cached list page may be served, in seconds.
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 30, global = true)]
    pub cache_ttl_seconds: u64,

    /// Events a stream client may fall behind before it is disconnected as too slow.
    #[arg(long, env = "STREAM_BUFFER", default_value_t = 1024, global = true)]
    pub stream_buffer: usize,

    /// Seconds between keep-alives on every stream: an SSE comment, a WebSocket ping, a
    /// Socket.IO ping (proxies close connections that stay silent too long).
    #[arg(
        long,
        env = "STREAM_KEEPALIVE_SECONDS",
        default_value_t = 15,
        global = true
    )]
    pub keepalive_seconds: u64,

    /// Concurrent group commits of creates; each holds one database connection while it
    /// writes, and a group grows with the load. More lanes mean smaller groups and more
    /// flushes to disk: against a PostgreSQL on one core of the same machine, 1 lane took
    /// 13,800-14,200 POST/s, 2 lanes 13,200-13,800 and 4 lanes 10,700. Raise it when the
    /// database is far away, since each lane waits a round trip per group.
    #[arg(long, env = "WRITE_LANES", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), global = true)]
    pub write_lanes: u16,

    /// Origins browsers may call the API and open WebSocket and Socket.IO streams from,
    /// comma-separated (e.g. `https://app.example.com`), or `*` for any; none by default.
    #[arg(
        long,
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub cors_allowed_origins: Vec<String>,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub redis: RedisArgs,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Batch jobs run in this process only when it also processes events (no KAFKA_BROKERS);
    /// otherwise the processor's CronJobs or `processor schedule` run them.
    #[command(flatten)]
    pub schedule: ScheduleArgs,
}

impl ServerArgs {
    /// The database URL: DATABASE_URL, or the embedded SQLite file.
    pub fn database_url(&self) -> String {
        self.database
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("herald.db").display()))
    }
}
