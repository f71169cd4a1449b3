//! Event sequences a client received, each at most once.

use std::collections::HashSet;

/// The event sequences a client received: each at most once, or the test fails.
#[derive(Default)]
pub struct Seen(HashSet<i64>);

impl Seen {
    pub fn record(&mut self, sequence: i64) {
        assert!(
            self.0.insert(sequence),
            "event {sequence} was delivered twice"
        );
    }
}
