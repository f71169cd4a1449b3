//! Live streams of events to clients: Server-Sent Events, Socket.IO v4 and plain WebSocket,
//! each replaying what a reconnecting client missed from the event log before going live
//! (`replay`), with the same payloads (`wire`). The wire protocols themselves are in the
//! `stream-protocols` crate; here is what connects them to the event log and the fan-out.

mod audience;
mod direct;
mod gauges;
mod hub;
mod params;
mod replay;
mod socketio;
mod sse;
mod stall;
mod window;
mod wire;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use herald_core::fanout::Fanout;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use direct::{DirectStreams, run_shard as serve_direct_streams};
pub use gauges::OpenStreams;
pub use hub::Hub;
pub use params::user_id_filter;
pub use replay::FeedSource;
pub use stall::{Stalls, run as cut_stalled_streams};
pub use window::WindowReads;

/// Until shutdown: every keep-alive interval, tells every stream to send its client a
/// keep-alive (an SSE comment, a WebSocket ping; Socket.IO pings on its own).
pub async fn send_keep_alives(fanout: Fanout, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => fanout.keep_alive(),
        }
    }
}

/// Routes of the HTTP-upgrade and SSE endpoints.
pub fn routes(hub: Arc<Hub>) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(sse::notifications))
        .routes(routes!(ws::upgrade))
        .with_state(hub)
}

/// Mounts Socket.IO at `/socket.io` on the finished router.
pub fn attach_socket_io(router: Router, hub: &Arc<Hub>) -> Router {
    socketio::attach(router, hub)
}
