//! Grafana dashboards as ConfigMaps labelled for Grafana's dashboard sidecar
//! (`grafana_dashboard: "1"`), which loads every such ConfigMap it sees.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde_json::{Value, json};

use super::{Component, child_meta};
use crate::crd::NotificationPlatform;

/// The label Grafana's sidecar (kiwigrid k8s-sidecar, as in the Grafana Helm chart) looks for.
pub const GRAFANA_DASHBOARD_LABEL: &str = "grafana_dashboard";

pub fn dashboards_config_map_name(platform: &NotificationPlatform) -> String {
    format!("{}-dashboards", platform.name_any())
}

pub fn dashboards_config_map(platform: &NotificationPlatform) -> ConfigMap {
    let mut metadata = child_meta(platform, dashboards_config_map_name(platform), "dashboards");
    metadata
        .labels
        .get_or_insert_default()
        .insert(GRAFANA_DASHBOARD_LABEL.into(), "1".into());
    let file = format!(
        "herald-{}-{}.json",
        platform.namespace().unwrap_or_default(),
        platform.name_any()
    );
    ConfigMap {
        metadata,
        data: Some([(file, overview(platform).to_string())].into()),
        ..ConfigMap::default()
    }
}

/// Request rate, errors and latency of the api-server and throughput of the processor, scoped
/// to this platform's pods.
fn overview(platform: &NotificationPlatform) -> Value {
    let namespace = platform.namespace().unwrap_or_default();
    let api = format!(
        r#"namespace="{namespace}",pod=~"{}-.*""#,
        Component::Api.object_name(platform)
    );
    let processor = format!(
        r#"namespace="{namespace}",pod=~"{}-.*""#,
        Component::Processor.object_name(platform)
    );
    let panels = [
        (
            "API requests per second",
            format!("sum by (status) (rate(herald_http_requests_total{{{api}}}[5m]))"),
            "reqps",
        ),
        (
            "API p95 latency",
            format!(
                "histogram_quantile(0.95, sum by (le) (rate(herald_http_request_duration_seconds_bucket{{{api}}}[5m])))"
            ),
            "s",
        ),
        (
            "Processed Kafka records per second",
            format!("sum by (outcome) (rate(herald_processor_records_total{{{processor}}}[5m]))"),
            "ops",
        ),
        (
            "Ready pods",
            format!("sum by (pod) (up{{namespace=\"{namespace}\"}})"),
            "short",
        ),
    ];
    let panels: Vec<Value> = panels
        .iter()
        .enumerate()
        .map(|(i, (title, expr, unit))| {
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"refId": "A", "expr": expr}],
            })
        })
        .collect();
    json!({
        "uid": format!("herald-{}", platform.uid().unwrap_or_default().chars().take(8).collect::<String>()),
        "title": format!("Herald {namespace}/{}", platform.name_any()),
        "tags": ["herald"],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;

    #[test]
    fn labelled_for_the_grafana_sidecar() {
        let cm = dashboards_config_map(&platform());
        assert_eq!(cm.metadata.name.as_deref(), Some("demo-dashboards"));
        assert_eq!(cm.metadata.labels.unwrap()[GRAFANA_DASHBOARD_LABEL], "1");
    }

    #[test]
    fn dashboard_is_json_scoped_to_the_platform() {
        let data = dashboards_config_map(&platform()).data.unwrap();
        let text = &data["herald-herald-demo.json"];
        let dashboard: Value = serde_json::from_str(text).unwrap();
        assert_eq!(dashboard["title"], "Herald herald/demo");
        let panels = dashboard["panels"].as_array().unwrap();
        assert_eq!(panels.len(), 4);
        let expr = panels[0]["targets"][0]["expr"].as_str().unwrap();
        assert!(
            expr.contains(r#"namespace="herald",pod=~"demo-api-.*""#),
            "{expr}"
        );
    }
}
