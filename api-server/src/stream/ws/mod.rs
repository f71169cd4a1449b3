//! `GET /api/ws`: plain WebSocket with JSON text frames, for clients without Socket.IO.
//!
//! Server frames:
//! - `{"type": "notification", "sequence": N, "notification": {...}}`: created;
//! - `{"type": "notification.updated", "sequence": N, "notification": {...}}`: status changed;
//! - `{"type": "recovered", "complete": bool, "lastSequence": N}`: catch-up over, live now
//!   (always sent first after connecting; wait for it before relying on live delivery);
//! - `{"type": "reset", "lastSequence": N, "message"}`: missed events are gone, refetch;
//! - `{"type": "error", "code": "token_expired", "message", "lastSequence"}`, then close 4001
//!   "token expired": reconnect with a new token and `?since=<lastSequence>`.
//!
//! `sequence` is the event's position in the log; resume with `?since=<last sequence seen>`.
//!
//! The server pings every keep-alive interval. It closes with 1008 "slow consumer" when the
//! client falls more than the stream buffer behind, 1012 "service restart" on shutdown, 1011
//! when the event log is unavailable. Client pings are answered and a client's close is echoed;
//! other frames from the client are skipped.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use stream_protocols::websocket;

use super::audience::Audience;
use super::direct::{self, Protocol};
use super::hub::Hub;
use super::params::{RawQuery, StreamParams};
use super::replay::Feed;
use crate::auth::Subscriber;
use crate::connection::Peer;
use crate::error::{ApiError, ApiResult, ErrorBody};

pub mod frames;

/// A WebSocket of JSON frames: `notification`, `notification.updated`, `recovered`, `reset`.
#[utoipa::path(get, path = "/api/ws", tag = "streams",
    security(("userToken" = []), ("apiKey" = []), ("accessTokenQuery" = [])),
    params(
        ("since" = Option<i64>, Query, description = "Replay events after this sequence, then go live"),
        ("userId" = Option<String>, Query, description = "Only broadcasts and this user's notifications (a user token: always its own)"),
        ("access_token" = Option<String>, Query, description = "The credential, for clients that cannot set Authorization (browsers' WebSocket)"),
    ),
    responses(
        (status = SWITCHING_PROTOCOLS, description = "JSON text frames `{\"type\": \"notification\" | \"notification.updated\", \"sequence\", \"notification\"}`, `{\"type\": \"recovered\", \"complete\", \"lastSequence\"}` and `{\"type\": \"reset\", \"lastSequence\", \"message\"}`"),
        (status = BAD_REQUEST, body = ErrorBody, description = "A bad query parameter, or not a WebSocket handshake"),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, body = ErrorBody, description = "Another user's userId, a key without read:all, or an origin not allowed"),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, body = ErrorBody),
    ))]
pub async fn upgrade(
    Subscriber(caller): Subscriber,
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    query: RawQuery,
    mut request: Request,
) -> ApiResult<Response> {
    let params = StreamParams::parse(query)?;
    let audience = Audience::of(&caller, params.user_id.clone())?;
    let (accept, upgrade) = take_upgrade(&mut request)?;
    // Subscribed before the handshake completes, so a client may rely on everything that
    // happens after it connected.
    let start = params.start();
    let feed = Feed::open(&hub.feeds, audience, start).await?;
    tokio::spawn(async move {
        // Served straight on the socket once hyper hands it over.
        let Some((socket, read)) = peer.detach.after_upgrade(upgrade).await else {
            return;
        };
        // Clients wait for the handshake's answer before they send, so this is rarely any.
        let mut inbound = websocket::Inbound::default();
        let mut replies = Vec::new();
        if inbound.push(&read, &mut replies) != websocket::Read::Open {
            return;
        }
        direct::serve(
            socket,
            Protocol::WebSocket(inbound),
            replies.concat(),
            feed,
            &hub.direct,
        );
    });
    Ok(switching_protocols(accept))
}

/// Checks a WebSocket handshake and takes its upgrade: the `Sec-WebSocket-Accept` to answer
/// with, and what completes once the 101 is sent.
pub fn take_upgrade(request: &mut Request) -> ApiResult<(String, OnUpgrade)> {
    let accept = handshake(request.method(), request.headers())?;
    let upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "websocket_required",
                "this connection cannot be upgraded to a WebSocket (HTTP/1.1 only)".to_owned(),
            )
        })?;
    Ok((accept, upgrade))
}

/// The 101 that completes a WebSocket handshake.
pub fn switching_protocols(accept: String) -> Response {
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, "websocket"),
        ],
        [(header::SEC_WEBSOCKET_ACCEPT, accept)],
    )
        .into_response()
}

/// The `Sec-WebSocket-Accept` for a valid WebSocket handshake; the same checks as axum's
/// `WebSocketUpgrade`, with its messages.
fn handshake(method: &Method, headers: &HeaderMap) -> ApiResult<String> {
    let reject = |status, message: &str| {
        Err(ApiError::new(
            status,
            "websocket_required",
            message.to_owned(),
        ))
    };
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET {
        return reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request method must be `GET`",
        );
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return reject(
            StatusCode::BAD_REQUEST,
            "Connection header did not include 'upgrade'",
        );
    }
    if !has_token(header::UPGRADE, "websocket") {
        return reject(
            StatusCode::BAD_REQUEST,
            "`Upgrade` header did not include 'websocket'",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return reject(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Version` header did not include '13'",
        );
    }
    match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(key) => Ok(websocket::accept_key(key.as_bytes())),
        None => reject(
            StatusCode::BAD_REQUEST,
            "`Sec-WebSocket-Key` header missing",
        ),
    }
}
