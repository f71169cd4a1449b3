//! Kafka topics through the admin API: create what is missing, raise partitions, converge
//! topic configs, never shrink; delete on request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::crd::{ChildState, TopicSpec, TopicStatus};

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// Without the brokers: they come from a Secret, and this message ends up in the status.
    #[error("Kafka is unreachable: {source}")]
    Unreachable {
        #[source]
        source: KafkaError,
    },
    #[error("Kafka admin request failed: {0}")]
    Admin(#[from] KafkaError),
    #[error("the Kafka metadata request did not complete: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("deleting topic {topic} failed: {code}")]
    Delete {
        topic: String,
        code: RDKafkaErrorCode,
    },
}

/// What one convergence did, for status and events.
#[derive(Debug, Default)]
pub struct TopicsReport {
    pub statuses: Vec<TopicStatus>,
    pub created: Vec<String>,
    /// (topic, from, to) partition counts.
    pub grown: Vec<(String, usize, usize)>,
    pub reconfigured: Vec<String>,
}

/// A connection to one cluster's admin API; created per reconcile because the brokers come
/// from a Secret that may change at any time.
pub struct TopicAdmin {
    client: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
}

impl TopicAdmin {
    pub fn new(brokers: &str, timeout: Duration) -> Result<Self, TopicsError> {
        let client = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set(
                "socket.connection.setup.timeout.ms",
                timeout.as_millis().to_string(),
            )
            .create()
            .map_err(|source| TopicsError::Unreachable { source })?;
        Ok(Self {
            client: Arc::new(client),
            timeout,
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }

    /// Partition counts of the topics that exist; fails when no broker answers in time.
    async fn existing(&self) -> Result<HashMap<String, usize>, TopicsError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        // librdkafka's metadata call blocks its thread until the timeout.
        let metadata =
            tokio::task::spawn_blocking(move || client.inner().fetch_metadata(None, timeout))
                .await
                .map_err(|e| TopicsError::Admin(KafkaError::AdminOpCreation(e.to_string())))?
                .map_err(|source| TopicsError::Unreachable { source })?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect())
    }

    pub async fn ensure(&self, topics: &[TopicSpec]) -> Result<TopicsReport, TopicsError> {
        let existing = self.existing().await?;
        let mut report = TopicsReport::default();
        let mut failures: HashMap<String, String> = HashMap::new();

        let missing: Vec<&TopicSpec> = topics
            .iter()
            .filter(|t| !existing.contains_key(&t.name))
            .collect();
        if !missing.is_empty() {
            let new_topics: Vec<NewTopic> = missing
                .iter()
                .map(|t| {
                    t.config.iter().fold(
                        NewTopic::new(
                            &t.name,
                            t.partitions,
                            TopicReplication::Fixed(t.replication_factor),
                        ),
                        |topic, (key, value)| topic.set(key, value),
                    )
                })
                .collect();
            for result in self
                .client
                .create_topics(&new_topics, &self.options())
                .await?
            {
                match result {
                    Ok(name) => report.created.push(name),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((name, code)) => {
                        failures.insert(name, format!("creating failed: {code}"));
                    }
                }
            }
        }

        let to_grow: Vec<(&TopicSpec, usize)> = topics
            .iter()
            .filter_map(|t| existing.get(&t.name).map(|&n| (t, n)))
            .filter(|(t, n)| usize::try_from(t.partitions).is_ok_and(|want| want > *n))
            .collect();
        if !to_grow.is_empty() {
            let partitions: Vec<NewPartitions> = to_grow
                .iter()
                .map(|(t, _)| NewPartitions::new(&t.name, t.partitions.unsigned_abs() as usize))
                .collect();
            let results = self
                .client
                .create_partitions(&partitions, &self.options())
                .await?;
            for ((topic, from), result) in to_grow.iter().zip(results) {
                match result {
                    Ok(_) => report.grown.push((
                        topic.name.clone(),
                        *from,
                        topic.partitions.unsigned_abs() as usize,
                    )),
                    Err((name, code)) => {
                        failures.insert(name, format!("adding partitions failed: {code}"));
                    }
                }
            }
        }

        let created: Vec<&str> = report.created.iter().map(String::as_str).collect();
        let to_configure: Vec<&TopicSpec> = topics
            .iter()
            .filter(|t| existing.contains_key(&t.name) && !created.contains(&t.name.as_str()))
            .collect();
        for (name, error) in self.converge_configs(&to_configure, &mut report).await? {
            failures.insert(name, error);
        }

        let partitions_now = |t: &TopicSpec| -> Option<i32> {
            if report.created.contains(&t.name) {
                return Some(t.partitions);
            }
            let grown = report
                .grown
                .iter()
                .find(|(n, _, _)| *n == t.name)
                .map(|g| g.2);
            grown
                .or(existing.get(&t.name).copied())
                .and_then(|n| i32::try_from(n).ok())
        };
        report.statuses = topics
            .iter()
            .map(|t| {
                let partitions = partitions_now(t);
                let (state, message) = match failures.remove(&t.name) {
                    Some(error) => (ChildState::Failed, Some(error)),
                    None => (
                        ChildState::Ready,
                        partitions
                            .filter(|&n| n > t.partitions)
                            .map(|n| format!("has {n} partitions, more than the {} asked for; partitions are never removed", t.partitions)),
                    ),
                };
                TopicStatus { name: t.name.clone(), partitions, state, message }
            })
            .collect();
        Ok(report)
    }

    /// Sets the topic configs to exactly `config` where they differ (dynamic topic configs not
    /// in the spec return to the broker default). Returns per-topic failures.
    async fn converge_configs(
        &self,
        topics: &[&TopicSpec],
        report: &mut TopicsReport,
    ) -> Result<Vec<(String, String)>, TopicsError> {
        if topics.is_empty() {
            return Ok(vec![]);
        }
        let specifiers: Vec<ResourceSpecifier> = topics
            .iter()
            .map(|t| ResourceSpecifier::Topic(&t.name))
            .collect();
        let described = self
            .client
            .describe_configs(&specifiers, &self.options())
            .await?;
        let mut failures = vec![];
        let mut changes = vec![];
        for (topic, result) in topics.iter().zip(described) {
            match result {
                Ok(resource) => {
                    let current: BTreeMap<&str, &str> = resource
                        .entries
                        .iter()
                        .filter(|e| e.source == ConfigSource::DynamicTopic)
                        .filter_map(|e| e.value.as_deref().map(|v| (e.name.as_str(), v)))
                        .collect();
                    let desired: BTreeMap<&str, &str> = topic
                        .config
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    if current != desired {
                        changes.push(*topic);
                    }
                }
                Err(code) => failures.push((
                    topic.name.clone(),
                    format!("reading configs failed: {code}"),
                )),
            }
        }
        if changes.is_empty() {
            return Ok(failures);
        }
        let alters: Vec<AlterConfig> = changes
            .iter()
            .map(|t| {
                t.config.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(&t.name)),
                    |a, (k, v)| a.set(k, v),
                )
            })
            .collect();
        let results = self.client.alter_configs(&alters, &self.options()).await?;
        for (topic, result) in changes.iter().zip(results) {
            match result {
                Ok(_) => report.reconfigured.push(topic.name.clone()),
                Err((_, code)) => failures.push((
                    topic.name.clone(),
                    format!("changing configs failed: {code}"),
                )),
            }
        }
        Ok(failures)
    }

    /// Deletes the topics; topics that do not exist count as deleted.
    pub async fn delete(&self, names: &[&str]) -> Result<(), TopicsError> {
        // Fails fast and clearly when Kafka is down, instead of a per-topic timeout.
        self.existing().await?;
        for result in self.client.delete_topics(names, &self.options()).await? {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => return Err(TopicsError::Delete { topic, code }),
            }
        }
        Ok(())
    }
}
