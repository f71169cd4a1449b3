//! Cuts Server-Sent Events clients that stopped reading, on the streams that stay with hyper
//! (HTTP/1.0 and HTTP/2; the others are served by `direct`, which watches its own writes).
//!
//! A client that does not read fills its socket; hyper then waits to write and stops polling
//! the response body, so the stream itself can never notice that it fell behind. One task
//! checks every open stream's progress through the fan-out instead, which costs each
//! connection no task and no timer of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::connection::Kill;
use crate::state::SharedState;

/// Only Server-Sent Events need this: Socket.IO tasks watch their own writes.
const TRANSPORT: &str = "sse";
/// How often the streams' progress is checked.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// The open streams being watched.
#[derive(Default)]
pub struct Stalls {
    watched: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
}

struct Entry {
    /// The stream's [`Feed::progress`](super::replay::Feed::progress).
    progress: Arc<AtomicU64>,
    kill: Kill,
}

/// Watches a stream until dropped.
pub struct Watched {
    id: u64,
    state: SharedState,
}

impl Stalls {
    pub fn watch(state: &SharedState, progress: Arc<AtomicU64>, kill: Kill) -> Watched {
        let stalls = &state.stalls;
        let id = stalls.next_id.fetch_add(1, Ordering::Relaxed);
        stalls.entries().insert(id, Entry { progress, kill });
        Watched {
            id,
            state: state.clone(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // An entry is two plain values: a panic elsewhere cannot leave the map inconsistent.
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.state.stalls.entries().remove(&self.id);
    }
}

/// Until `state.shutdown`: cuts every watched stream more than the stream buffer behind.
pub async fn run(state: SharedState) {
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = check.tick() => {}
        }
        let sent = state.fanout.sent();
        let limit = state.streams.buffer as u64;
        let mut cut = 0;
        state.stalls.entries().retain(|_, entry| {
            let behind = sent.saturating_sub(entry.progress.load(Ordering::Relaxed));
            if behind <= limit {
                return true;
            }
            entry.kill.kill();
            cut += 1;
            false
        });
        if cut > 0 {
            state
                .metrics
                .slow_consumer_disconnects
                .with_label_values(&[TRANSPORT])
                .inc_by(cut);
            tracing::info!(
                clients = cut,
                "SSE clients too slow; cutting their connections"
            );
        }
    }
}
