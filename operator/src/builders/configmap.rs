//! The platform ConfigMap: non-secret settings every container reads through `envFrom`. The keys
//! are the environment variables the api-server and processor read.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;

use super::{API_PORT, METRICS_PORT, child_meta};
use crate::crd::NotificationPlatform;

pub fn config_map_name(platform: &NotificationPlatform) -> String {
    format!("{}-config", platform.name_any())
}

pub fn config_map(platform: &NotificationPlatform) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(platform, config_map_name(platform), "config"),
        data: Some(config_data(platform)),
        ..ConfigMap::default()
    }
}

pub(super) fn config_data(platform: &NotificationPlatform) -> BTreeMap<String, String> {
    let spec = &platform.spec;
    let mut data = BTreeMap::from([
        (
            "LOG_FORMAT".to_owned(),
            spec.observability.log_format.as_str().to_owned(),
        ),
        ("LOG_LEVEL".to_owned(), spec.observability.log_level.clone()),
        ("PORT".to_owned(), API_PORT.to_string()),
        ("METRICS_ADDR".to_owned(), format!("0.0.0.0:{METRICS_PORT}")),
        (
            "KAFKA_NOTIFICATIONS_TOPIC".to_owned(),
            spec.kafka.notifications_topic.clone(),
        ),
        (
            "KAFKA_DEAD_LETTER_TOPIC".to_owned(),
            spec.kafka.dead_letter_topic.clone(),
        ),
        (
            "KAFKA_GROUP_ID".to_owned(),
            spec.processor.consumer_group.clone(),
        ),
    ]);
    if let Some(endpoint) = &spec.observability.otlp_endpoint {
        data.insert("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone());
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;
    use crate::builders::{LABEL_INSTANCE, LABEL_MANAGED_BY};

    #[test]
    fn holds_topics_logging_and_otlp_endpoint() {
        let cm = config_map(&platform());
        assert_eq!(cm.metadata.name.as_deref(), Some("demo-config"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("herald"));
        let data = cm.data.unwrap();
        assert_eq!(data["LOG_FORMAT"], "json");
        assert_eq!(data["LOG_LEVEL"], "info");
        assert_eq!(data["PORT"], "3001");
        assert_eq!(data["METRICS_ADDR"], "0.0.0.0:9090");
        assert_eq!(data["KAFKA_NOTIFICATIONS_TOPIC"], "notifications");
        assert_eq!(data["KAFKA_DEAD_LETTER_TOPIC"], "notifications-dlq");
        assert_eq!(data["KAFKA_GROUP_ID"], "herald-processor");
        assert_eq!(
            data["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://tempo.monitoring:4318"
        );
        assert!(
            data.keys().all(|k| !k.contains("URL")),
            "no credentials in a ConfigMap"
        );
    }

    #[test]
    fn is_labelled_and_owned() {
        let cm = config_map(&platform());
        let labels = cm.metadata.labels.unwrap();
        assert_eq!(labels[LABEL_MANAGED_BY], "herald-operator");
        assert_eq!(labels[LABEL_INSTANCE], "demo");
        let owner = &cm.metadata.owner_references.unwrap()[0];
        assert_eq!(owner.kind, "NotificationPlatform");
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn no_otlp_endpoint_when_unset() {
        let mut p = platform();
        p.spec.observability.otlp_endpoint = None;
        assert!(
            !config_map(&p)
                .data
                .unwrap()
                .contains_key("OTEL_EXPORTER_OTLP_ENDPOINT")
        );
    }
}
