//! The `NotificationPlatform` custom resource (herald.dev/v1alpha1).
//!
//! Everything the API server can check at admission is declared here (OpenAPI bounds, list
//! keys, CEL rules); what only the reconciler can check is reported in the status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of one Herald platform: the api-server and processor workloads, their Kafka
/// topics, batch schedules and observability wiring.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "herald.dev",
    version = "v1alpha1",
    kind = "NotificationPlatform",
    namespaced,
    status = "NotificationPlatformStatus",
    derive = "PartialEq",
    shortname = "np",
    category = "herald",
    doc = "A Herald notification platform: api-server, processor, Kafka topics, batch schedules and observability.",
    // Children are named `<platform>-<suffix>`; the longest suffix is `-dashboards`, and a
    // CronJob name (platform + schedule) may not exceed 52 characters.
    validation = Rule::new("size(self.metadata.name) <= 40").message("metadata.name must be at most 40 characters"),
    validation = Rule::new("!has(self.spec.schedules) || self.spec.schedules.all(s, size(self.metadata.name) + 1 + size(s.name) <= 52)")
        .message("platform name and schedule name together must be at most 51 characters (CronJob name limit)"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "API", type_ = "integer", json_path = ".status.api.readyReplicas", description = "Ready api-server replicas"),
    printcolumn(name = "Processor", type_ = "integer", json_path = ".status.processor.readyReplicas", description = "Ready processor replicas"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPlatformSpec {
    /// Container image that holds the `api-server` and `processor` binaries.
    #[serde(default)]
    pub image: ImageSpec,
    #[serde(default)]
    pub api: ApiSpec,
    #[serde(default)]
    pub processor: ProcessorSpec,
    /// PostgreSQL connection URL, read by the pods from this Secret key.
    pub database: SecretKeyRef,
    /// Redis connection URL, read by the pods from this Secret key.
    pub redis: SecretKeyRef,
    pub kafka: KafkaSpec,
    /// Batch jobs, one CronJob each.
    #[serde(default)]
    #[schemars(length(max = 20))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub observability: ObservabilitySpec,
    /// Stop reconciling (nothing is created, changed or deleted) until set back to false.
    #[serde(default)]
    pub paused: bool,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    #[serde(default = "default_repository")]
    #[schemars(length(min = 1, max = 255))]
    pub repository: String,
    #[serde(default = "default_tag")]
    #[schemars(length(min = 1, max = 128))]
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            repository: default_repository(),
            tag: default_tag(),
            pull_policy: None,
        }
    }
}

fn default_repository() -> String {
    "ghcr.io/herald/herald".into()
}

fn default_tag() -> String {
    env!("CARGO_PKG_VERSION").into()
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    #[serde(default = "default_api_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Defaults to modest requests and a memory limit when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    pub service: ServiceSpec,
}

impl Default for ApiSpec {
    fn default() -> Self {
        Self {
            replicas: default_api_replicas(),
            resources: None,
            service: ServiceSpec::default(),
        }
    }
}

fn default_api_replicas() -> i32 {
    2
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    #[serde(default = "default_service_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// `ClientIP` keeps each client on one api-server replica. With more than one replica,
    /// Socket.IO clients on long-polling (socket.io-client's default) need that, unless the
    /// ingress in front keeps them on one replica itself (ingress-nginx talks to the pods
    /// directly: use its cookie affinity). WebSocket, SSE and REST clients do not need it.
    #[serde(default, rename = "sessionAffinity")]
    pub session_affinity: SessionAffinity,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            type_: ServiceType::default(),
            port: default_service_port(),
            session_affinity: SessionAffinity::default(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SessionAffinity {
    #[default]
    None,
    #[serde(rename = "ClientIP")]
    ClientIp,
}

impl SessionAffinity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::ClientIp => "ClientIP",
        }
    }
}

fn default_service_port() -> i32 {
    80
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorSpec {
    #[serde(default = "default_processor_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Kafka consumer group of the processor.
    #[serde(default = "default_consumer_group")]
    #[schemars(length(min = 1, max = 249))]
    pub consumer_group: String,
}

impl Default for ProcessorSpec {
    fn default() -> Self {
        Self {
            replicas: default_processor_replicas(),
            resources: None,
            consumer_group: default_consumer_group(),
        }
    }
}

fn default_processor_replicas() -> i32 {
    1
}

fn default_consumer_group() -> String {
    "herald-processor".into()
}

/// A key of a Secret in the resource's namespace; credentials are never inlined in the spec.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.topics.exists(t, t.name == self.notificationsTopic)")
        .message("notificationsTopic must name one of kafka.topics"),
    validation = Rule::new("self.topics.exists(t, t.name == self.deadLetterTopic)")
        .message("deadLetterTopic must name one of kafka.topics")
)]
pub struct KafkaSpec {
    /// Bootstrap servers (`host:port,...`), read by the operator and the pods from this Secret key.
    pub brokers_secret_ref: SecretKeyRef,
    /// Topics the operator creates and grows (partitions are never reduced). Names are
    /// cluster-wide in Kafka; a topic removed from this list is left in Kafka.
    #[serde(default = "default_topics")]
    #[schemars(length(min = 1, max = 20))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub topics: Vec<TopicSpec>,
    /// Topic the api-server publishes notifications to and the processor consumes.
    #[serde(default = "default_notifications_topic")]
    pub notifications_topic: String,
    /// Topic for messages the processor could not handle.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// What happens to the topics when the resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn default_topics() -> Vec<TopicSpec> {
    [default_notifications_topic(), default_dead_letter_topic()]
        .into_iter()
        .map(|name| TopicSpec {
            name,
            partitions: default_partitions(),
            replication_factor: default_replication_factor(),
            config: BTreeMap::new(),
        })
        .collect()
}

fn default_notifications_topic() -> String {
    "notifications".into()
}

fn default_dead_letter_topic() -> String {
    "notifications-dlq".into()
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub name: String,
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1000))]
    pub partitions: i32,
    #[serde(default = "default_replication_factor")]
    #[schemars(range(min = 1, max = 16))]
    pub replication_factor: i32,
    /// Topic configs, e.g. `retention.ms`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

fn default_partitions() -> i32 {
    3
}

fn default_replication_factor() -> i32 {
    1
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Topics outlive the resource.
    #[default]
    Retain,
    /// Topics are deleted (through a finalizer) before the resource goes away.
    Delete,
}

#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Unique within the resource; the CronJob is named `<platform>-<name>`.
    #[schemars(
        length(min = 1, max = 40),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Cron expression (five fields) or a macro such as `@daily`.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new(r"self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\\S+( +\\S+){4})$')")
        .message("schedule must be a cron expression with five fields or a macro such as @daily"))]
    pub schedule: String,
    pub job: JobKind,
    /// Extra arguments after `processor job <job>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub args: Vec<String>,
    #[serde(default)]
    pub suspend: bool,
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
    /// IANA time zone name, e.g. `Europe/Berlin`; the cluster's time zone when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    Cleanup,
    Report,
    UserSync,
}

impl JobKind {
    /// The `processor job` subcommand.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cleanup => "cleanup",
            Self::Report => "report",
            Self::UserSync => "user-sync",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    Allow,
    /// Batch jobs touch the same rows; overlapping runs are skipped by default.
    #[default]
    Forbid,
    Replace,
}

impl ConcurrencyPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "Allow",
            Self::Forbid => "Forbid",
            Self::Replace => "Replace",
        }
    }
}

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

/// Observed state, written by the operator only when it changes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPlatformStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, KafkaTopicsReady, SchedulesReady.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub api: ComponentStatus,
    #[serde(default)]
    pub processor: ComponentStatus,
    #[serde(default)]
    pub topics: Vec<TopicStatus>,
    #[serde(default)]
    pub schedules: Vec<ScheduleStatus>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    pub replicas: i32,
    pub ready_replicas: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    pub name: String,
    /// Partitions the topic has on the broker, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    pub state: ChildState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    pub name: String,
    pub cron_job: String,
    pub state: ChildState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ChildState {
    Ready,
    /// Kafka or the API server refused it; see `message`.
    Failed,
    /// Not checked, e.g. because Kafka is unreachable.
    Unknown,
}

/// The CRD as YAML, as `crdgen` writes it to `crds/`.
pub fn crd_yaml() -> String {
    let yaml = serde_yaml::to_string(&NotificationPlatform::crd())
        .unwrap_or_else(|e| unreachable!("a CRD always serializes: {e}"));
    format!("# Generated by `cargo run -p operator -- crdgen`; do not edit.\n{yaml}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_crd_matches_the_types() {
        let committed = include_str!("../../crds/notificationplatforms.herald.dev.yaml");
        assert!(
            committed == crd_yaml(),
            "crds/notificationplatforms.herald.dev.yaml is stale: run `cargo run -p operator -- crdgen`"
        );
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec: NotificationPlatformSpec = serde_json::from_value(serde_json::json!({
            "database": {"name": "db", "key": "url"},
            "redis": {"name": "redis", "key": "url"},
            "kafka": {"brokersSecretRef": {"name": "kafka", "key": "brokers"}},
        }))
        .unwrap();
        assert_eq!(spec.api.replicas, 2);
        assert_eq!(spec.processor.replicas, 1);
        assert_eq!(spec.kafka.deletion_policy, DeletionPolicy::Retain);
        let topics: Vec<_> = spec.kafka.topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(topics, ["notifications", "notifications-dlq"]);
        assert!(spec.observability.grafana_dashboards);
        assert!(!spec.paused);
    }

    #[test]
    fn schema_carries_admission_rules() {
        let crd = serde_json::to_string(&NotificationPlatform::crd()).unwrap();
        for needle in [
            "x-kubernetes-validations",
            "x-kubernetes-list-map-keys",
            "notificationsTopic must name one of kafka.topics",
            "schedule must be a cron expression",
        ] {
            assert!(crd.contains(needle), "CRD schema lacks {needle}");
        }
    }
}
