//! Latency distributions: HDR histograms at microsecond resolution and their summary.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Up to an hour, 3 significant digits.
const HIGHEST_MICROS: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    // Valid constant bounds.
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

/// Percentiles of a latency distribution, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Summary {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            count: histogram.len(),
            mean_us: (histogram.mean() * 10.0).round() / 10.0,
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }

    /// `p50 1.2 ms  p90 ...` for tables.
    pub fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
            millis(self.p50_us),
            millis(self.p90_us),
            millis(self.p99_us),
            millis(self.p999_us),
            millis(self.max_us),
            self.count
        )
    }
}

fn millis(micros: u64) -> String {
    format!("{:.3} ms", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = histogram();
        for micros in 1..=1000 {
            h.record(micros).unwrap();
        }
        let summary = Summary::of(&h);
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.p50_us, 500);
        assert_eq!(summary.p99_us, 990);
        assert_eq!(summary.max_us, 1000);
        assert!(summary.line().starts_with("p50 0.500 ms"));
        assert_eq!(Summary::of(&histogram()).line(), "no samples");
    }
}
