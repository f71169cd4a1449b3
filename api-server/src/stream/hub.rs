//! What the stream handlers are given: where feeds come from, where live clients are served,
//! and the settings every transport shares.

use std::sync::Arc;
use std::time::Duration;

use super::direct::DirectStreams;
use super::gauges::OpenStreams;
use super::replay::FeedSource;
use super::stall::Stalls;
use crate::auth::Guard;

pub struct Hub {
    /// Also where the stream buffer and the shutdown token are: the feeds use them first.
    pub feeds: Arc<FeedSource>,
    /// The shards that serve live clients straight on their sockets.
    pub direct: Arc<DirectStreams>,
    /// SSE streams served by hyper, watched for clients that stopped reading.
    pub stalls: Arc<Stalls>,
    pub open: Arc<OpenStreams>,
    pub keepalive: Duration,
    /// Identifies Socket.IO clients (from `auth.token`); the other transports get their
    /// caller from the request.
    pub guard: Arc<Guard>,
}
