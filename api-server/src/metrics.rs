//! Prometheus metrics of the api-server, served at `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub cache_errors: IntCounter,
    /// Open SSE, WebSocket and Socket.IO connections, by transport.
    pub stream_connections: IntGaugeVec,
    /// Clients disconnected because they did not read fast enough, by transport.
    pub slow_consumer_disconnects: IntCounterVec,
    pub stream_deliveries: IntCounterVec,
    pub outbox_backlog: IntGauge,
    pub outbox_published: IntCounter,
    pub outbox_publish_errors: IntCounter,
    pub fanout_publish_errors: IntCounter,
    /// Refused credentials, by error code (`missing_credentials`, `token_expired`, ...).
    pub auth_failures: IntCounterVec,
    /// Requests refused with 429, by limit (`publish`, `connect`, `auth_failures`).
    pub rate_limited: IntCounterVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("herald".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request duration").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["route", "method", "status"],
        )?;
        let cache_hits = IntCounter::new(
            "cache_hits_total",
            "Notification list reads served from the cache",
        )?;
        let cache_misses = IntCounter::new(
            "cache_misses_total",
            "Notification list reads that went to the database",
        )?;
        let cache_errors = IntCounter::new(
            "cache_errors_total",
            "Cache operations that failed (the database answered instead)",
        )?;
        let stream_connections = IntGaugeVec::new(
            Opts::new(
                "stream_connections",
                "Open streaming connections by transport",
            ),
            &["transport"],
        )?;
        let slow_consumer_disconnects = IntCounterVec::new(
            Opts::new(
                "slow_consumer_disconnects_total",
                "Stream clients disconnected for not keeping up",
            ),
            &["transport"],
        )?;
        let stream_deliveries = IntCounterVec::new(
            Opts::new(
                "stream_deliveries_total",
                "Events written to stream clients",
            ),
            &["transport"],
        )?;
        let outbox_backlog = IntGauge::new(
            "outbox_backlog",
            "Events stored but not yet published to Kafka",
        )?;
        let outbox_published =
            IntCounter::new("outbox_published_total", "Events the relay published")?;
        let outbox_publish_errors =
            IntCounter::new("outbox_publish_errors_total", "Failed relay batches")?;
        let fanout_publish_errors = IntCounter::new(
            "fanout_publish_errors_total",
            "Events that could not be fanned out right away",
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new("auth_failures_total", "Refused credentials by reason"),
            &["code"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by a rate limit"),
            &["limit"],
        )?;

        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        registry.register(Box::new(cache_errors.clone()))?;
        registry.register(Box::new(stream_connections.clone()))?;
        registry.register(Box::new(slow_consumer_disconnects.clone()))?;
        registry.register(Box::new(stream_deliveries.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(outbox_published.clone()))?;
        registry.register(Box::new(outbox_publish_errors.clone()))?;
        registry.register(Box::new(fanout_publish_errors.clone()))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            http_requests,
            http_duration,
            cache_hits,
            cache_misses,
            cache_errors,
            stream_connections,
            slow_consumer_disconnects,
            stream_deliveries,
            outbox_backlog,
            outbox_published,
            outbox_publish_errors,
            fanout_publish_errors,
            auth_failures,
            rate_limited,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
