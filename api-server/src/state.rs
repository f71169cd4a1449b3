//! What every handler and background task of the api-server shares.

use std::sync::Arc;
use std::time::Duration;

use herald_core::db::Db;
use herald_core::fanout::Fanout;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub type SharedState = Arc<AppState>;

pub struct AppState {
    pub db: Db,
    pub fanout: Fanout,
    pub metrics: Arc<Metrics>,
    pub streams: StreamSettings,
    pub open_streams: crate::stream::OpenStreams,
    /// The event log's replay window, read once for streams that open together.
    pub replay_windows: crate::stream::WindowReads,
    /// The SSE, WebSocket and Socket.IO-over-WebSocket streams detached from hyper.
    pub direct_streams: crate::stream::DirectStreams,
    /// Server-Sent Events streams served by hyper, watched for clients that stopped reading.
    pub stalls: crate::stream::Stalls,
    /// Cancelled on SIGTERM: streams tell their clients to reconnect and end.
    pub shutdown: CancellationToken,
}

#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Events a client may fall behind before it is disconnected.
    pub buffer: usize,
    pub keepalive: Duration,
}
