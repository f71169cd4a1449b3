//! Rate limits per caller: notifications created per API key, streams opened per user, key or
//! address, failed authentications per address. Each answers 429 with `Retry-After` and is
//! counted in `herald_rate_limited_total`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// How often the limiters forget callers that are back under their limit.
const FORGET_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Publish,
    Connect,
    AuthFailures,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Connect => "connect",
            Self::AuthFailures => "auth_failures",
        }
    }
}

pub struct RateLimits {
    publish: Option<DefaultKeyedRateLimiter<String>>,
    connect: Option<DefaultKeyedRateLimiter<String>>,
    failures: Option<DefaultKeyedRateLimiter<String>>,
    metrics: Arc<Metrics>,
}

/// Up to `per_second` a second, in bursts of as many; `None` for 0 (no limit).
fn limiter(per_second: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_second).map(|rate| RateLimiter::keyed(Quota::per_second(rate)))
}

impl RateLimits {
    pub fn new(publish: u32, connect: u32, failures: u32, metrics: Arc<Metrics>) -> Self {
        Self {
            publish: limiter(publish),
            connect: limiter(connect),
            failures: limiter(failures),
            metrics,
        }
    }

    /// Counts one `limit` event for `key`; a 429 once over the limit.
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), ApiError> {
        let limiter = match limit {
            Limit::Publish => &self.publish,
            Limit::Connect => &self.connect,
            Limit::AuthFailures => &self.failures,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            self.metrics
                .rate_limited
                .with_label_values(&[limit.name()])
                .inc();
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let message = match limit {
                Limit::Publish => "too many notifications from this caller",
                Limit::Connect => "too many stream connections from this caller",
                Limit::AuthFailures => "too many failed authentications from this address",
            };
            ApiError::rate_limited(
                format!("{message}; retry after {} s", wait.as_secs().max(1)),
                wait.as_secs().max(1),
            )
        })
    }

    /// Until shutdown: forgets callers that are back under their limits, so a flood of new
    /// addresses cannot grow the limiters without bound.
    pub async fn forget_idle(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FORGET_EVERY);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for limiter in [&self.publish, &self.connect, &self.failures]
                .into_iter()
                .flatten()
            {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}
