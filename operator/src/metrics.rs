//! Prometheus metrics of the reconciler, on a registry of its own (several controllers can run
//! in one test process).

use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("herald_operator".into()), None)
            .unwrap_or_else(|e| unreachable!("a constant prefix is valid: {e}"));
        let reconciles = IntCounterVec::new(
            Opts::new(
                "reconciles_total",
                "Reconciles of NotificationPlatforms by outcome",
            ),
            &["outcome"],
        )
        .unwrap_or_else(|e| unreachable!("constant metric options are valid: {e}"));
        let errors = IntCounterVec::new(
            Opts::new("reconcile_errors_total", "Failed reconciles by reason"),
            &["reason"],
        )
        .unwrap_or_else(|e| unreachable!("constant metric options are valid: {e}"));
        let duration = Histogram::with_opts(
            HistogramOpts::new("reconcile_duration_seconds", "Duration of one reconcile")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
        )
        .unwrap_or_else(|e| unreachable!("constant metric options are valid: {e}"));
        for collector in [
            Box::new(reconciles.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(duration.clone()),
        ] {
            registry
                .register(collector)
                .unwrap_or_else(|e| unreachable!("each metric is registered once: {e}"));
        }
        Self {
            registry,
            reconciles,
            errors,
            duration,
        }
    }

    /// Starts timing a reconcile; the time is recorded when the guard is dropped.
    pub fn start(&self) -> ReconcileTimer {
        ReconcileTimer {
            histogram: self.duration.clone(),
            started: Instant::now(),
        }
    }

    /// `outcome`: ready, degraded, progressing, paused, deleted, error.
    pub fn reconciled(&self, outcome: &str) {
        self.reconciles.with_label_values(&[outcome]).inc();
    }

    pub fn failed(&self, reason: &str) {
        self.reconciles.with_label_values(&["error"]).inc();
        self.errors.with_label_values(&[reason]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding metrics failed: {e}\n"))
    }
}

pub struct ReconcileTimer {
    histogram: Histogram,
    started: Instant,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_errors_and_durations() {
        let metrics = Metrics::new();
        metrics.reconciled("ready");
        metrics.failed("kube");
        drop(metrics.start());
        let text = metrics.encode();
        assert!(
            text.contains(r#"herald_operator_reconciles_total{outcome="ready"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"herald_operator_reconciles_total{outcome="error"} 1"#));
        assert!(text.contains(r#"herald_operator_reconcile_errors_total{reason="kube"} 1"#));
        assert!(text.contains("herald_operator_reconcile_duration_seconds_count 1"));
    }
}
