//! The observed state the operator writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secret_ref::SecretKeyRef;

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
    /// The Secret key the api-server reads its API keys from (none with `insecureNoAuth`). Read
    /// it with `kubectl get secret <name> -o jsonpath='{.data.<key>}' | base64 -d`; a
    /// generated Secret's key is `keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<SecretKeyRef>,
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
