//! Socket.IO v4 at `/socket.io/` (namespace `/`), compatible with an unmodified
//! `socket.io-client` 4.
//!
//! Handshake `auth`: `{"token": "<user token or API key>", "lastSequence": N, "userId": "..."}`
//! (`token` required unless authentication is off); `since` and `offset` are accepted as other
//! names for `lastSequence`, as a number or a numeric string. Invalid `auth` or a refused
//! token fails the connect with a `connect_error` saying why (`error.data.code`: the REST
//! API's error code, e.g. `token_expired`); the client may connect again with a new token.
//! A browser page must be on an allowed origin (`CORS_ALLOWED_ORIGINS`). Events to the client:
//! - `notification` `(notification, sequence)`: created; the first argument is the plain
//!   notification object, as the seed emitted it, the second the event's sequence (the
//!   position to resume from, which for status events differs from `notification.sequence`);
//! - `notification:updated` `(notification, sequence)`: status changed (delivered or failed);
//! - `recovered` `{"complete", "lastSequence"}`: after the replay that follows every connect
//!   (also when nothing was missed); live from here;
//! - `reset` `{"lastSequence", "message"}`: missed events are no longer kept, refetch;
//! - `error` `{"code": "slow_consumer" | "unavailable" | "token_expired", "message",
//!   "lastSequence"}` just before the server disconnects the socket (`io server disconnect`;
//!   after `token_expired`, set `auth.token` and `auth.lastSequence` and call `connect()`).
//!
//! On shutdown the server closes every connection without disconnecting the sockets, so
//! clients see `transport close` and reconnect on their own.
//!
//! Engine.IO 4 and Socket.IO 5, text packets on namespace `/`, are spoken here rather than
//! through a library, so that every connected client's stream is served on the direct-stream
//! shards, with each event's frame built once for all:
//! - [`engine`]: WebSocket sessions, opened straight away (`transports: ["websocket"]`) or
//!   upgraded from long-polling;
//! - [`polling`]: long-polling sessions (`socket.io-client`'s default start) until they
//!   upgrade.

mod auth;
mod engine;
mod polling;
mod received;
mod session;

pub use session::{Session, TRANSPORT, event_frame};

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use stream_protocols::engineio::{Query, RequestError};

use super::hub::Hub;
use crate::connection::Peer;

/// Mounts Socket.IO at `/socket.io` and below (the Socket.IO server's default path).
pub fn attach(router: Router, hub: &Arc<Hub>) -> Router {
    let sessions = Arc::new(polling::Sessions::default());
    let hub = hub.clone();
    let entry = any(move |request: Request| {
        let (hub, sessions) = (hub.clone(), sessions.clone());
        async move { route(&hub, &sessions, request).await }
    });
    router
        .route("/socket.io", entry.clone())
        .route("/socket.io/", entry.clone())
        .route("/socket.io/{*rest}", entry)
}

/// Sends an Engine.IO request where its query says: a long-polling handshake, poll or post,
/// or a WebSocket, new or upgrading a long-polling session.
async fn route(hub: &Arc<Hub>, sessions: &Arc<polling::Sessions>, request: Request) -> Response {
    let query = Query::parse(request.uri().query());
    if query.version.as_deref() != Some("4") {
        return polling::engine_error(RequestError::UnsupportedProtocolVersion);
    }
    let method = request.method().clone();
    match (query.transport.as_deref(), query.sid, method) {
        (Some("websocket"), sid, Method::GET) => {
            let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<Peer>>().cloned()
            else {
                return polling::engine_error(RequestError::BadRequest);
            };
            if let Err(refused) = hub.guard.origins.check(request.headers()) {
                return refused.into_response();
            }
            match sid {
                None => engine::accept(hub, peer, request),
                Some(sid) => polling::upgrade(hub, sessions, &sid, peer, request),
            }
        }
        (Some("polling"), None, Method::GET) => {
            let address = request
                .extensions()
                .get::<ConnectInfo<Peer>>()
                .and_then(|ConnectInfo(peer)| peer.address);
            polling::handshake(hub, sessions, address)
        }
        (Some("polling"), Some(sid), Method::GET) => polling::poll(hub, sessions, &sid).await,
        (Some("polling"), Some(sid), Method::POST) => {
            polling::post(sessions, &sid, request.into_body()).await
        }
        (Some("polling" | "websocket"), ..) => {
            polling::engine_error(RequestError::BadHandshakeMethod)
        }
        _ => polling::engine_error(RequestError::UnknownTransport),
    }
}
