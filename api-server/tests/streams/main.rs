//! Live streams (SSE, plain WebSocket, Socket.IO) of the real api-server binary, on real
//! PostgreSQL and Redis (and in embedded mode): live delivery, replay on reconnect, fan-out
//! across replicas, slow consumers and shutdown.

#[path = "../common/mod.rs"]
mod common;

mod clients;
mod replicas;
mod resync;
mod slow_consumer;
mod socketio;
mod sse;
mod websocket;

use serde_json::{Value, json};

/// A broadcast notification with this message.
fn broadcast(message: &str) -> Value {
    json!({"message": message, "type": "info"})
}

/// A notification for one user.
fn for_user(message: &str, user: &str) -> Value {
    json!({"message": message, "type": "warning", "userId": user})
}
