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

use herald_core::fanout::Fanout;
use tokio_util::sync::CancellationToken;

use crate::connection::Kill;
use crate::metrics::Metrics;

/// Only Server-Sent Events need this: Socket.IO tasks watch their own writes.
const TRANSPORT: &str = "sse";
/// How often the streams' progress is checked.
const CHECK_EVERY: Duration = Duration::from_millis(50);

/// The open streams being watched.
pub struct Stalls {
    watched: Mutex<HashMap<u64, Entry>>,
    next_id: AtomicU64,
    /// How far the fan-out got, against which streams are measured.
    fanout: Fanout,
    /// Items a stream may fall behind.
    buffer: usize,
    metrics: Arc<Metrics>,
}

struct Entry {
    /// The stream's [`Feed::progress`](super::replay::Feed::progress).
    progress: Arc<AtomicU64>,
    kill: Kill,
}

/// Watches a stream until dropped.
pub struct Watched {
    id: u64,
    stalls: Arc<Stalls>,
}

impl Stalls {
    pub fn new(fanout: Fanout, buffer: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            watched: Mutex::default(),
            next_id: AtomicU64::new(0),
            fanout,
            buffer,
            metrics,
        }
    }

    pub fn watch(self: &Arc<Self>, progress: Arc<AtomicU64>, kill: Kill) -> Watched {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.entries().insert(id, Entry { progress, kill });
        Watched {
            id,
            stalls: self.clone(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // An entry is two plain values: a panic elsewhere cannot leave the map inconsistent.
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stalls.entries().remove(&self.id);
    }
}

/// Until `shutdown`: cuts every watched stream more than the stream buffer behind.
pub async fn run(stalls: Arc<Stalls>, shutdown: CancellationToken) {
    let mut check = tokio::time::interval(CHECK_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = check.tick() => {}
        }
        let sent = stalls.fanout.sent();
        let limit = stalls.buffer as u64;
        let mut cut = 0;
        stalls.entries().retain(|_, entry| {
            let behind = sent.saturating_sub(entry.progress.load(Ordering::Relaxed));
            if behind <= limit {
                return true;
            }
            entry.kill.kill();
            cut += 1;
            false
        });
        if cut > 0 {
            stalls
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
