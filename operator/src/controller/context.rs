//! What every reconcile shares: the settings, the API client, Events, metrics and backoff.

use std::time::Duration;

use kube::runtime::events::{Event, Recorder};
use kube::{Client, Resource};
use tracing::warn;

use super::backoff::Backoff;
use crate::crd::NotificationPlatform;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct Config {
    /// Watch one namespace; all namespaces when unset.
    pub namespace: Option<String>,
    /// How long a Kafka admin request may take before Kafka counts as unreachable.
    pub kafka_timeout: Duration,
    /// Periodic re-check of a healthy platform (catches changes to topics made outside Kubernetes).
    pub resync: Duration,
    /// First delay after a failure; doubled per consecutive failure of the same object.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Identity in Events (`reportingInstance`), e.g. the pod name.
    pub instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            kafka_timeout: Duration::from_secs(10),
            resync: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            instance: None,
        }
    }
}

pub(super) struct Context {
    pub(super) client: Client,
    pub(super) config: Config,
    pub(super) recorder: Recorder,
    pub(super) metrics: Metrics,
    pub(super) backoff: Backoff,
}

impl Context {
    pub(super) async fn publish(&self, platform: &NotificationPlatform, event: &Event) {
        if let Err(error) = self
            .recorder
            .publish(event, &platform.object_ref(&()))
            .await
        {
            warn!(%error, reason = %event.reason, "publishing an event failed");
        }
    }
}
