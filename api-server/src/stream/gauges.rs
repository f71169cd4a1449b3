//! The streams open on this replica: counted by transport in the metrics, and awaited at
//! shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::metrics::Metrics;

/// The streams still open, so shutdown can wait until each has told its client to reconnect
/// (WebSocket tasks outlive the HTTP server's graceful shutdown).
pub struct OpenStreams {
    count: AtomicUsize,
    all_closed: Notify,
    metrics: Arc<Metrics>,
}

impl OpenStreams {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            count: AtomicUsize::new(0),
            all_closed: Notify::new(),
            metrics,
        }
    }

    /// Counts a stream of `transport` as open until the gauge is dropped.
    pub fn open(self: &Arc<Self>, transport: &str) -> ConnectionGauge {
        let gauge = self
            .metrics
            .stream_connections
            .with_label_values(&[transport]);
        gauge.inc();
        self.count.fetch_add(1, Ordering::SeqCst);
        ConnectionGauge {
            gauge,
            streams: self.clone(),
        }
    }

    /// The counters of `transport`'s streams.
    pub fn counters(&self, transport: &str) -> StreamCounters {
        StreamCounters {
            deliveries: self
                .metrics
                .stream_deliveries
                .with_label_values(&[transport]),
            slow_consumers: self
                .metrics
                .slow_consumer_disconnects
                .with_label_values(&[transport]),
        }
    }

    /// Resolves once no stream is open.
    pub async fn closed(&self) {
        loop {
            let mut notified = std::pin::pin!(self.all_closed.notified());
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A stream's counters, looked up once rather than per event.
pub struct StreamCounters {
    pub deliveries: prometheus::IntCounter,
    pub slow_consumers: prometheus::IntCounter,
}

/// Counts an open stream in `stream_connections` and [`OpenStreams`] for as long as it lives.
pub struct ConnectionGauge {
    gauge: prometheus::IntGauge,
    streams: Arc<OpenStreams>,
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.gauge.dec();
        let streams = &self.streams;
        if streams.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            streams.all_closed.notify_waiters();
        }
    }
}
