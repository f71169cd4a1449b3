//! Pure functions from a `NotificationPlatform` to the objects it should own. Nothing here talks
//! to a cluster, so every builder is unit-tested on its own.

mod auth;
mod configmap;
mod cronjob;
mod dashboards;
mod deployment;
mod monitoring;
mod pod;
mod service;

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::crd::NotificationPlatform;

pub use auth::{
    API_KEY_RANDOM_BYTES, API_KEYS_KEY, api_keys_ref, api_keys_secret, api_keys_secret_name,
};
pub use configmap::{config_map, config_map_name};
pub use cronjob::{cron_job, cron_job_name};
pub use dashboards::{dashboards_config_map, dashboards_config_map_name};
pub use deployment::{api_deployment, processor_deployment};
pub use monitoring::{
    MONITORING_GROUP_VERSION, prometheus_rule, prometheus_rule_resource, service_monitor,
    service_monitor_resource,
};
pub use service::{api_metrics_service, api_service, processor_service};

/// Field manager of every server-side apply, so ownership of fields stays with one actor.
pub const FIELD_MANAGER: &str = "herald-operator";
/// HTTP port of the api-server.
pub const API_PORT: i32 = 3001;
/// Port of `/metrics` on the api-server and processor pods, named `metrics`. The api-server's
/// is separate from its API so that Prometheus scrapes it without an API key.
pub const METRICS_PORT: i32 = 9090;

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
const APP_NAME: &str = "herald";

/// The workloads the operator runs for each platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Api,
    Processor,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Processor => "processor",
        }
    }

    /// Name of the component's Deployment and Service.
    pub fn object_name(self, platform: &NotificationPlatform) -> String {
        format!("{}-{}", platform.name_any(), self.as_str())
    }

    /// `OTEL_SERVICE_NAME` of the component's pods.
    fn service_name(self) -> &'static str {
        match self {
            Self::Api => "herald-api-server",
            Self::Processor => "herald-processor",
        }
    }
}

/// Label selector matching every object this operator created for `platform`; used to prune.
pub fn owned_selector(platform: &NotificationPlatform) -> String {
    format!(
        "{LABEL_MANAGED_BY}={FIELD_MANAGER},{LABEL_INSTANCE}={}",
        platform.name_any()
    )
}

/// Labels that select a component's pods; they form immutable Deployment selectors.
fn selector_labels(platform: &NotificationPlatform, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), APP_NAME.to_owned()),
        (LABEL_INSTANCE.to_owned(), platform.name_any()),
        (LABEL_COMPONENT.to_owned(), component.to_owned()),
    ])
}

fn labels(platform: &NotificationPlatform, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(platform, component);
    labels.insert(LABEL_MANAGED_BY.to_owned(), FIELD_MANAGER.to_owned());
    labels.insert(LABEL_PART_OF.to_owned(), APP_NAME.to_owned());
    labels
}

/// Metadata of a child: name, namespace, labels and the controller owner reference that makes
/// Kubernetes garbage-collect it with the platform.
fn child_meta(platform: &NotificationPlatform, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: platform.namespace(),
        labels: Some(labels(platform, component)),
        // None only for a platform never stored (no uid), as in a dry run.
        owner_references: platform.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
pub(crate) mod test_fixtures {
    use kube::api::ObjectMeta;

    use crate::crd::{NotificationPlatform, NotificationPlatformSpec};

    /// A platform as the API server returns it (named, namespaced, with a uid) with defaults.
    pub fn platform() -> NotificationPlatform {
        let spec: NotificationPlatformSpec = serde_json::from_value(serde_json::json!({
            "database": {"name": "herald-db", "key": "url"},
            "redis": {"name": "herald-redis", "key": "url"},
            "kafka": {"brokersSecretRef": {"name": "herald-kafka", "key": "brokers"}},
            "schedules": [
                {"name": "nightly-cleanup", "schedule": "0 3 * * *", "job": "cleanup", "args": ["--older-than", "30d"]},
            ],
            "observability": {"otlpEndpoint": "http://tempo.monitoring:4318"},
        }))
        .unwrap();
        NotificationPlatform {
            metadata: ObjectMeta {
                name: Some("demo".into()),
                namespace: Some("herald".into()),
                uid: Some("0b0e1f3c-5a5f-4c1c-9a51-2f3c1a1d2e3f".into()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            ..NotificationPlatform::new("demo", spec)
        }
    }
}
