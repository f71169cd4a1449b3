//! Logs, traces, metrics and dashboards of the workloads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    /// OTLP/HTTP endpoint for traces (Tempo or a collector), e.g. `http://tempo.monitoring:4318`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Log filter of the pods, e.g. `info` or `info,herald=debug`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub log_format: LogFormat,
    /// Create ServiceMonitors when the Prometheus Operator's CRDs are installed.
    #[serde(default = "enabled")]
    pub service_monitor: bool,
    /// Create ConfigMaps labelled for Grafana's dashboard sidecar.
    #[serde(default = "enabled")]
    pub grafana_dashboards: bool,
    /// Create a PrometheusRule with alerts when the Prometheus Operator's CRDs are installed.
    #[serde(default = "enabled")]
    pub prometheus_rules: bool,
}

impl Default for ObservabilitySpec {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            log_level: default_log_level(),
            log_format: LogFormat::default(),
            service_monitor: true,
            grafana_dashboards: true,
            prometheus_rules: true,
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

fn enabled() -> bool {
    true
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for Loki.
    #[default]
    Json,
    Text,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}
