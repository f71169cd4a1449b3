//! The wire protocols of Herald's live streams, as pure encoding, decoding and state: no
//! sockets, no tasks, no application types. The api-server drives them from its own I/O.
//!
//! - [`websocket`]: RFC 6455 frames, the handshake's accept key, and a bounded reader of
//!   client frames;
//! - [`engineio`]: Engine.IO 4 packets, long-polling payloads, the open handshake and the
//!   session's states;
//! - [`socketio`]: Socket.IO 5 packets, carried in Engine.IO messages;
//! - [`sse`]: Server-Sent Events, written and parsed;
//! - [`chunked`]: HTTP/1.1 chunks, for event streams written straight to their sockets.

pub mod chunked;
pub mod engineio;
pub mod socketio;
pub mod sse;
pub mod websocket;
