//! How each kind of direct stream is framed on its socket, and what its clients may send.

use axum::body::Bytes;
use herald_core::db::DbError;
use herald_core::fanout::Broadcast;
use stream_protocols::chunked::{self, LAST_CHUNK};
use stream_protocols::websocket;

use crate::stream::gauges::{OpenStreams, StreamCounters};
use crate::stream::replay::Delivery;
use crate::stream::socketio::{self, Session};
use crate::stream::sse::frames as sse;
use crate::stream::ws::frames as ws;

/// How a client's stream is framed on its socket.
#[derive(Debug)]
pub enum Protocol {
    /// Server-Sent Events in a chunked HTTP/1.1 body.
    Sse,
    /// WebSocket frames, after the handshake.
    WebSocket(websocket::Inbound),
    /// Engine.IO packets in WebSocket frames, once connected to the namespace.
    SocketIo(Session),
}

impl Protocol {
    pub(super) fn transport(&self) -> &'static str {
        match self {
            Self::Sse => sse::TRANSPORT,
            Self::WebSocket(_) => ws::TRANSPORT,
            Self::SocketIo(_) => socketio::TRANSPORT,
        }
    }

    /// The bytes of a notification event: the same for every client of this protocol.
    pub(super) fn event(&self, event: &Broadcast) -> Bytes {
        match self {
            Self::Sse => chunked::chunk(&sse::event_frame(event)),
            Self::WebSocket(_) => websocket::text(ws::event_text(event).as_bytes()),
            Self::SocketIo(_) => socketio::event_frame(event),
        }
    }

    /// The bytes of any other delivery, and whether the stream goes on after them.
    /// `last_sequence` is the feed's, after the delivery.
    pub(super) fn other(
        &mut self,
        delivery: Result<Delivery, DbError>,
        last_sequence: i64,
    ) -> (Bytes, bool) {
        match self {
            Self::Sse => {
                let (frame, more) = sse::frame(delivery, last_sequence);
                let mut bytes = Vec::with_capacity(frame.len() + 16);
                chunked::push_chunk(&mut bytes, &frame);
                if !more {
                    bytes.extend_from_slice(LAST_CHUNK);
                }
                (bytes.into(), more)
            }
            Self::WebSocket(_) => match ws::outgoing(delivery, last_sequence) {
                ws::Outgoing::Text(text) => (websocket::text(text.as_bytes()), true),
                ws::Outgoing::Ping => (websocket::ping(), true),
                ws::Outgoing::Close(code, reason) => (websocket::close(code, reason), false),
                ws::Outgoing::Last(text, code, reason) => {
                    let last = [
                        websocket::text(text.as_bytes()),
                        websocket::close(code, reason),
                    ];
                    (last.concat().into(), false)
                }
            },
            Self::SocketIo(session) => session.other(delivery, last_sequence),
        }
    }

    /// Takes what the client sent; answers into `replies` (pongs), and says whether the
    /// client closed the connection, with the frame to answer that with.
    pub(super) fn read(&mut self, input: &[u8], replies: &mut Vec<Bytes>) -> websocket::Read {
        match self {
            // Nothing a client sends on an event stream means anything.
            Self::Sse => websocket::Read::Open,
            Self::WebSocket(inbound) => inbound.push(input, replies),
            Self::SocketIo(session) => session.push(input, replies),
        }
    }

    /// This protocol's counters, from the shard's.
    pub(super) fn counters<'a>(&self, counters: &'a Counters) -> &'a StreamCounters {
        match self {
            Self::Sse => &counters.sse,
            Self::WebSocket(_) => &counters.ws,
            Self::SocketIo(_) => &counters.socketio,
        }
    }
}

pub(super) struct Counters {
    sse: StreamCounters,
    ws: StreamCounters,
    socketio: StreamCounters,
}

impl Counters {
    pub(super) fn new(open: &OpenStreams) -> Self {
        Self {
            sse: open.counters(sse::TRANSPORT),
            ws: open.counters(ws::TRANSPORT),
            socketio: open.counters(socketio::TRANSPORT),
        }
    }
}
