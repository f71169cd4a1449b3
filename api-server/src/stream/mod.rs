//! Live streams of events to clients: Server-Sent Events, Socket.IO v4 and plain WebSocket,
//! each replaying what a reconnecting client missed from the event log before going live
//! (`replay`), with the same payloads (`wire`).

mod direct;
mod params;
mod replay;
mod socketio;
mod sse;
mod stall;
mod window;
mod wire;
mod ws;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use direct::{DirectStreams, run_shard as serve_direct_streams};
pub use params::user_id_filter;
pub use replay::OpenStreams;
pub use stall::{Stalls, run as cut_stalled_streams};
pub use window::WindowReads;

use crate::state::SharedState;

/// Until shutdown: every keep-alive interval, tells every stream to send its client a
/// keep-alive (an SSE comment, a WebSocket ping; Socket.IO pings on its own).
pub async fn send_keep_alives(state: SharedState) {
    let every = state.streams.keepalive;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => state.fanout.keep_alive(),
        }
    }
}

/// Routes of the HTTP-upgrade and SSE endpoints.
pub fn routes() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(sse::notifications))
        .routes(routes!(ws::upgrade))
}

/// Mounts Socket.IO at `/socket.io` on the finished router.
pub fn attach_socket_io(router: Router, state: &SharedState) -> Router {
    socketio::attach(router, state)
}
