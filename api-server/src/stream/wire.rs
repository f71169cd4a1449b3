//! Payloads every transport sends besides the notifications themselves.

use serde::Serialize;

/// The catch-up after connecting is over; the stream is live from here.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovered {
    /// False when events the client missed were no longer kept (a `reset` came first).
    pub complete: bool,
    /// The client's position now: resume from it after a disconnect.
    pub last_sequence: i64,
}

/// Events the client missed are gone from the log: refetch state (e.g. `GET
/// /api/notifications`), then carry on with the stream, which continues after `lastSequence`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reset {
    pub last_sequence: i64,
    pub message: &'static str,
}

impl Reset {
    pub fn new(last_sequence: i64) -> Self {
        Self {
            last_sequence,
            message: "events after your position are no longer kept: refetch, then continue",
        }
    }
}

/// Why the server ends a stream: sent just before it closes.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Closing {
    /// `slow_consumer`, `shutdown`, `unavailable` or `token_expired`.
    pub code: &'static str,
    pub message: &'static str,
    /// Where to resume when reconnecting.
    pub last_sequence: i64,
}

impl Closing {
    pub fn slow_consumer(last_sequence: i64) -> Self {
        Self {
            code: "slow_consumer",
            message: "slow consumer: the client fell too far behind the live stream",
            last_sequence,
        }
    }

    pub fn shutdown(last_sequence: i64) -> Self {
        Self {
            code: "shutdown",
            message: "service restart: reconnect",
            last_sequence,
        }
    }

    pub fn token_expired(last_sequence: i64) -> Self {
        Self {
            code: "token_expired",
            message: "the token expired: reconnect with a new one and resume from lastSequence",
            last_sequence,
        }
    }

    pub fn unavailable(last_sequence: i64) -> Self {
        Self {
            code: "unavailable",
            message: "the event log is unavailable: reconnect shortly",
            last_sequence,
        }
    }
}
