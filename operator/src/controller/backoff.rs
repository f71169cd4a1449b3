//! Per-object exponential backoff: `base`, doubled per consecutive failure, at most `max`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;

use crate::crd::NotificationPlatform;

pub(super) struct Backoff {
    base: Duration,
    max: Duration,
    /// Consecutive failures by object uid.
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub(super) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::default(),
        }
    }

    /// The delay before retrying `platform`, counting one more failure.
    pub(super) fn next(&self, platform: &NotificationPlatform) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures
            .entry(platform.uid().unwrap_or_default())
            .or_insert(0);
        let delay = self.base.saturating_mul(2u32.saturating_pow(*count));
        *count = count.saturating_add(1);
        delay.min(self.max)
    }

    pub(super) fn reset(&self, platform: &NotificationPlatform) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&platform.uid().unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;

    #[test]
    fn backoff_doubles_per_object_up_to_the_cap_and_resets() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let (a, mut b) = (platform(), platform());
        b.metadata.uid = Some("another".into());
        let delays: Vec<u64> = (0..5).map(|_| backoff.next(&a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(
            backoff.next(&b).as_secs(),
            1,
            "objects back off independently"
        );
        backoff.reset(&a);
        assert_eq!(backoff.next(&a).as_secs(), 1);
    }
}
