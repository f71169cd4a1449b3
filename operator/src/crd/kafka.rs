//! The Kafka topics the operator manages, and the Secret with the brokers.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::secret_ref::SecretKeyRef;

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
