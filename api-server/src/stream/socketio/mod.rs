//! Socket.IO v4 at `/socket.io/` (namespace `/`), compatible with an unmodified
//! `socket.io-client` 4.
//!
//! Handshake `auth` (all optional): `{"lastSequence": N, "userId": "..."}`; `since` and
//! `offset` are accepted as other names for `lastSequence`, as a number or a numeric string.
//! Invalid `auth` fails the connection with a `connect_error` saying why. Events to the client:
//! - `notification` `(notification, sequence)`: created; the first argument is the plain
//!   notification object, as the seed emitted it, the second the event's sequence (the
//!   position to resume from, which for status events differs from `notification.sequence`);
//! - `notification:updated` `(notification, sequence)`: status changed (delivered or failed);
//! - `recovered` `{"complete", "lastSequence"}`: after the replay that follows every connect
//!   (also when nothing was missed); live from here;
//! - `reset` `{"lastSequence", "message"}`: missed events are no longer kept, refetch;
//! - `error` `{"code": "slow_consumer" | "unavailable", "message", "lastSequence"}` just
//!   before the server disconnects the socket (`io server disconnect`).
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

pub(super) mod engine;
mod polling;

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::response::Response;
use axum::routing::any;
use herald_core::event::EventType;
use herald_core::notification::check_user_id;
use serde_json::Value;
use stream_protocols::engineio::{Query, RequestError};

use super::params::parse_sequence;
use super::replay::Start;
use crate::connection::Peer;
use crate::state::SharedState;

pub(super) const TRANSPORT: &str = "socketio";

/// Mounts Socket.IO at `/socket.io` and below (the Socket.IO server's default path).
pub fn attach(router: Router, state: &SharedState) -> Router {
    let sessions = Arc::new(polling::Sessions::default());
    let state = state.clone();
    let entry = any(move |request: Request| {
        let (state, sessions) = (state.clone(), sessions.clone());
        async move { route(&state, &sessions, request).await }
    });
    router
        .route("/socket.io", entry.clone())
        .route("/socket.io/", entry.clone())
        .route("/socket.io/{*rest}", entry)
}

/// Sends an Engine.IO request where its query says: a long-polling handshake, poll or post,
/// or a WebSocket, new or upgrading a long-polling session.
async fn route(
    state: &SharedState,
    sessions: &Arc<polling::Sessions>,
    request: Request,
) -> Response {
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
            match sid {
                None => engine::accept(state, peer, request),
                Some(sid) => polling::upgrade(state, sessions, &sid, peer, request),
            }
        }
        (Some("polling"), None, Method::GET) => polling::handshake(state, sessions),
        (Some("polling"), Some(sid), Method::GET) => polling::poll(state, sessions, &sid).await,
        (Some("polling"), Some(sid), Method::POST) => {
            polling::post(sessions, &sid, request.into_body()).await
        }
        (Some("polling" | "websocket"), ..) => {
            polling::engine_error(RequestError::BadHandshakeMethod)
        }
        _ => polling::engine_error(RequestError::UnknownTransport),
    }
}

/// Where a client resumes and what it wants, from the handshake `auth`.
#[derive(Debug, PartialEq, Eq)]
struct Resume {
    start: Start,
    user_id: Option<String>,
}

impl Resume {
    /// The sequence to tell the client to resume after, before its stream started.
    fn last_sequence(&self) -> i64 {
        match self.start {
            Start::After(after) => after,
            Start::Live => 0,
        }
    }
}

/// The Socket.IO event a notification event goes out as.
fn event_name(kind: EventType) -> &'static str {
    match kind {
        EventType::Created => "notification",
        EventType::Delivered | EventType::Failed => "notification:updated",
    }
}

fn parse_auth(auth: &Value) -> Result<Resume, String> {
    let fields = match auth {
        Value::Null => {
            return Ok(Resume {
                start: Start::Live,
                user_id: None,
            });
        }
        Value::Object(fields) => fields,
        _ => {
            return Err(
                "auth must be an object like {\"lastSequence\": 42, \"userId\": \"u1\"}".into(),
            );
        }
    };
    let mut start = Start::Live;
    for name in ["lastSequence", "since", "offset"] {
        let after = match fields.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(number)) => number.as_i64().filter(|n| *n >= 0),
            Some(Value::String(text)) => parse_sequence(text),
            Some(_) => None,
        };
        let after = after.ok_or_else(|| {
            format!("auth.{name} must be a sequence number (a whole number, 0 or more)")
        })?;
        start = Start::After(after);
        break;
    }
    let user_id = match fields.get("userId") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => {
            check_user_id(user).map_err(|problem| format!("auth.userId {problem}"))?;
            Some(user.clone())
        }
        Some(_) => return Err("auth.userId must be a string".into()),
    };
    Ok(Resume { start, user_id })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn auth_names_the_resume_point_and_user() {
        let resume = parse_auth(&json!({"lastSequence": 42, "userId": "u1"})).unwrap();
        assert_eq!(
            resume,
            Resume {
                start: Start::After(42),
                user_id: Some("u1".into())
            }
        );
        assert_eq!(
            parse_auth(&json!({"offset": "7"})).unwrap().start,
            Start::After(7)
        );
        assert_eq!(
            parse_auth(&json!({"since": 0})).unwrap().start,
            Start::After(0)
        );
        assert_eq!(parse_auth(&Value::Null).unwrap().start, Start::Live);
        assert_eq!(parse_auth(&json!({})).unwrap().start, Start::Live);
    }

    #[test]
    fn bad_auth_is_refused_with_a_reason() {
        for auth in [
            json!({"lastSequence": -1}),
            json!({"lastSequence": "soon"}),
            json!({"lastSequence": 1.5}),
            json!({"userId": ""}),
            json!({"userId": 7}),
            json!({"userId": "bob\u{0}"}),
            json!("token"),
        ] {
            assert!(parse_auth(&auth).is_err(), "{auth} was accepted");
        }
    }
}
