//! Where a job reports how far it is.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a job reports how far it is: a progress bar on a terminal, log lines otherwise.
pub trait Progress: Send + Sync {
    /// `done` units of work so far, out of `total` when known; called after every batch.
    fn update(&self, job: &str, done: u64, total: Option<u64>);
}

/// Logs progress as JSON-friendly tracing events, at most one every `interval`.
pub struct LogProgress {
    interval: Duration,
    last: Mutex<Option<Instant>>,
}

impl LogProgress {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Mutex::new(None),
        }
    }
}

impl Default for LogProgress {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl Progress for LogProgress {
    fn update(&self, job: &str, done: u64, total: Option<u64>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < self.interval) {
            return;
        }
        *last = Some(Instant::now());
        tracing::info!(job, done, total, "progress");
    }
}
