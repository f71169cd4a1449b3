//! Prometheus metrics of the consumer, served at `/metrics`.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// By outcome: delivered, failed, duplicate, skipped, ignored, dead_lettered.
    pub records: IntCounterVec,
    /// Time from receiving a record to its durable effect (and broadcast), by outcome.
    pub duration: HistogramVec,
    /// Records behind the partition's end, from librdkafka's statistics.
    pub lag: IntGaugeVec,
    pub dead_lettered: IntCounter,
    /// Attempts that failed and were retried, by reason: unavailable (database down) or error.
    pub retries: IntCounterVec,
    pub broadcast_failures: IntCounter,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("herald_processor".into()), None)?;
        let records = IntCounterVec::new(
            Opts::new("records_total", "Kafka records handled, by outcome"),
            &["outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "processing_duration_seconds",
                "Time to handle one record, retries included",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
            &["outcome"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new(
                "consumer_lag",
                "Records between the committed position and the end",
            ),
            &["topic", "partition"],
        )?;
        let dead_lettered = IntCounter::new(
            "dead_letter_records_total",
            "Records sent to the dead-letter topic",
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "retries_total",
                "Failed processing attempts that were retried",
            ),
            &["reason"],
        )?;
        let broadcast_failures = IntCounter::new(
            "broadcast_failures_total",
            "Status events that could not be sent to the fan-out",
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(dead_lettered.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(broadcast_failures.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            records,
            duration,
            lag,
            dead_lettered,
            retries,
            broadcast_failures,
        })
    }

    fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into memory only fails on invalid metric names, which are ours.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Serves `/metrics` on `addr` until `shutdown`; fails at once when `addr` is taken.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for /metrics on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = self.clone();
                async move { ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], metrics.render()) }
            }),
        );
        Ok(tokio::spawn(herald_runtime::http::serve(
            listener,
            app,
            herald_runtime::http::plain,
            shutdown.cancelled_owned(),
        )))
    }
}
