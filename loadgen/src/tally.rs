//! Counting deliveries of numbered probes: latency of each first delivery, duplicates and
//! deliveries that arrive after a later-numbered one.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::latency::{self, Summary};

/// What one client received.
#[derive(Debug)]
pub struct Tally {
    seen: Vec<bool>,
    highest: Option<u64>,
    latencies: Vec<u64>,
    duplicates: u64,
    out_of_order: u64,
}

impl Tally {
    /// For probes numbered `0..expected`; others are ignored.
    pub fn new(expected: u64) -> Self {
        Self {
            seen: vec![false; usize::try_from(expected).unwrap_or(usize::MAX)],
            highest: None,
            latencies: Vec::new(),
            duplicates: 0,
            out_of_order: 0,
        }
    }

    /// Records probe `index`, sent at `sent_at` and received at `now` (both from
    /// `clock::now_micros`).
    pub fn record(&mut self, index: u64, sent_at: u64, now: u64) {
        let Some(seen) = usize::try_from(index)
            .ok()
            .and_then(|i| self.seen.get_mut(i))
        else {
            return;
        };
        if *seen {
            self.duplicates += 1;
            return;
        }
        *seen = true;
        if self.highest.is_some_and(|highest| index < highest) {
            self.out_of_order += 1;
        }
        self.highest = Some(self.highest.map_or(index, |h| h.max(index)));
        self.latencies.push(now.saturating_sub(sent_at).max(1));
    }

    /// Distinct probes received.
    pub fn unique(&self) -> u64 {
        self.latencies.len() as u64
    }
}

/// All clients' tallies together.
#[derive(Debug, Serialize)]
pub struct Deliveries {
    pub expected: u64,
    pub delivered: u64,
    pub delivered_ratio: f64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub latency: Summary,
}

impl Deliveries {
    pub fn of<'a>(expected: u64, tallies: impl IntoIterator<Item = &'a Tally>) -> Self {
        let mut histogram: Histogram<u64> = latency::histogram();
        let (mut duplicates, mut out_of_order) = (0, 0);
        for tally in tallies {
            for &micros in &tally.latencies {
                histogram.saturating_record(micros);
            }
            duplicates += tally.duplicates;
            out_of_order += tally.out_of_order;
        }
        let delivered = histogram.len();
        Self {
            expected,
            delivered,
            delivered_ratio: if expected == 0 {
                0.0
            } else {
                (delivered as f64 / expected as f64 * 10_000.0).round() / 10_000.0
            },
            duplicates,
            out_of_order,
            latency: Summary::of(&histogram),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{} of {} ({:.2} %), duplicates {}, out of order {}",
            self.delivered,
            self.expected,
            self.delivered_ratio * 100.0,
            self.duplicates,
            self.out_of_order
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_firsts_duplicates_and_reordering() {
        let mut tally = Tally::new(4);
        tally.record(0, 100, 150);
        tally.record(2, 100, 400);
        tally.record(1, 100, 300);
        tally.record(2, 100, 500);
        tally.record(9, 100, 500);
        assert_eq!(tally.unique(), 3);
        let other = Tally::new(4);
        let deliveries = Deliveries::of(8, [&tally, &other]);
        assert_eq!(deliveries.delivered, 3);
        assert_eq!(deliveries.duplicates, 1);
        assert_eq!(deliveries.out_of_order, 1);
        assert_eq!(deliveries.delivered_ratio, 0.375);
        assert_eq!(deliveries.latency.max_us, 300);
        assert_eq!(deliveries.latency.p50_us, 200);
    }
}
