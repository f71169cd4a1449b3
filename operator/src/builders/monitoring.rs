//! Prometheus Operator objects (ServiceMonitor, PrometheusRule). Their CRDs are optional, so
//! they are built as dynamic objects; the reconciler applies them only when the cluster serves
//! monitoring.coreos.com/v1.

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use super::service::api_metrics_service_name;
use super::{Component, FIELD_MANAGER, LABEL_INSTANCE, LABEL_MANAGED_BY, child_meta};
use crate::crd::NotificationPlatform;

pub const MONITORING_GROUP_VERSION: &str = "monitoring.coreos.com/v1";

pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

pub fn prometheus_rule_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "PrometheusRule"),
        "prometheusrules",
    )
}

/// One ServiceMonitor for the `metrics` port of the api-server's and the processor's metrics
/// Services; the api-server's `http` Service has no such port and yields no target.
pub fn service_monitor(platform: &NotificationPlatform) -> DynamicObject {
    let mut object = DynamicObject::new(&platform.name_any(), &service_monitor_resource());
    object.metadata = child_meta(platform, platform.name_any(), "monitoring");
    object.data = json!({
        "spec": {
            "selector": {"matchLabels": {
                LABEL_INSTANCE: platform.name_any(),
                LABEL_MANAGED_BY: FIELD_MANAGER,
            }},
            "endpoints": [
                {"port": "metrics", "path": "/metrics", "interval": "30s"},
            ],
        }
    });
    object
}

/// Alerts a user of this platform wants without writing PromQL: a component has no scrapeable
/// pod, or the api-server answers with many server errors.
pub fn prometheus_rule(platform: &NotificationPlatform) -> DynamicObject {
    let namespace = platform.namespace().unwrap_or_default();
    // The `service` label of a scraped series is the Service it was found through.
    let api = api_metrics_service_name(platform);
    let processor = Component::Processor.object_name(platform);
    let down = |service: &str| {
        format!(r#"(sum(up{{namespace="{namespace}",service="{service}"}}) or vector(0)) == 0"#)
    };
    let mut object = DynamicObject::new(&platform.name_any(), &prometheus_rule_resource());
    object.metadata = child_meta(platform, platform.name_any(), "monitoring");
    object.data = json!({
        "spec": {"groups": [{
            "name": format!("herald-{}", platform.name_any()),
            "rules": [
                {
                    "alert": "HeraldApiDown",
                    "expr": down(&api),
                    "for": "5m",
                    "labels": {"severity": "critical"},
                    "annotations": {"summary": format!("No api-server pod of {namespace}/{} is up", platform.name_any())},
                },
                {
                    "alert": "HeraldProcessorDown",
                    "expr": down(&processor),
                    "for": "5m",
                    "labels": {"severity": "critical"},
                    "annotations": {"summary": format!("No processor pod of {namespace}/{} is up", platform.name_any())},
                },
                {
                    "alert": "HeraldApiErrorRate",
                    "expr": format!(
                        r#"sum(rate(herald_http_requests_total{{namespace="{namespace}",service="{api}",status=~"5.."}}[5m])) / sum(rate(herald_http_requests_total{{namespace="{namespace}",service="{api}"}}[5m])) > 0.05"#
                    ),
                    "for": "10m",
                    "labels": {"severity": "warning"},
                    "annotations": {"summary": "More than 5% of api-server requests fail"},
                },
            ],
        }]}
    });
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;
    use crate::builders::{api_metrics_service, api_service, processor_service};

    #[test]
    fn service_monitor_scrapes_the_metrics_port_of_both_components() {
        let sm = service_monitor(&platform());
        assert_eq!(sm.types.as_ref().unwrap().kind, "ServiceMonitor");
        assert_eq!(
            sm.types.as_ref().unwrap().api_version,
            MONITORING_GROUP_VERSION
        );
        let selector = sm.data["spec"]["selector"]["matchLabels"]
            .as_object()
            .unwrap();
        let ports: Vec<_> = sm.data["spec"]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["port"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ports, ["metrics"]);
        let selects = |service: &k8s_openapi::api::core::v1::Service| {
            let labels = service.metadata.labels.as_ref().unwrap();
            selector
                .iter()
                .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
        };
        for service in [
            api_metrics_service(&platform()),
            processor_service(&platform()),
        ] {
            assert!(selects(&service));
            let port = &service.spec.unwrap().ports.unwrap()[0];
            assert_eq!(port.name.as_deref(), Some("metrics"));
        }
        // Selected too, but without a `metrics` port it yields no target.
        let api = api_service(&platform());
        assert!(selects(&api));
        let api_ports = api.spec.unwrap().ports.unwrap();
        assert!(
            api_ports
                .iter()
                .all(|p| p.name.as_deref() != Some("metrics"))
        );
    }

    #[test]
    fn prometheus_rule_alerts_on_down_components() {
        let rule = prometheus_rule(&platform());
        assert_eq!(rule.types.as_ref().unwrap().kind, "PrometheusRule");
        assert!(rule.metadata.owner_references.is_some());
        let rules = rule.data["spec"]["groups"][0]["rules"].as_array().unwrap();
        let alerts: Vec<_> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
        assert_eq!(
            alerts,
            ["HeraldApiDown", "HeraldProcessorDown", "HeraldApiErrorRate"]
        );
        assert!(
            rules[0]["expr"]
                .as_str()
                .unwrap()
                .contains(r#"service="demo-api-metrics""#)
        );
    }
}
