//! Timestamps to embed in notifications: microseconds of wall-clock time, advanced by the
//! monotonic clock so that a wall-clock step during a run cannot make a latency negative.
//! Sender and receiver are the same process, so the two ends read the same clock.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Anchor {
    wall_micros: u64,
    instant: Instant,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

/// Microseconds since the Unix epoch, never going backwards within this process.
pub fn now_micros() -> u64 {
    let anchor = ANCHOR.get_or_init(|| Anchor {
        wall_micros: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        instant: Instant::now(),
    });
    let elapsed = u64::try_from(anchor.instant.elapsed().as_micros()).unwrap_or(u64::MAX);
    anchor.wall_micros.saturating_add(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards_and_is_near_the_wall_clock() {
        let first = now_micros();
        let second = now_micros();
        assert!(second >= first);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(wall.abs_diff(second) < 60_000_000);
    }
}
