//! The platform's Kafka topics: converged on every reconcile, deleted with the platform when
//! its deletionPolicy says so.

use kube::ResourceExt;
use kube::runtime::events::{Event, EventType};
use tracing::{info, warn};

use super::context::Context;
use super::error::Error;
use super::secrets::{SecretError, read_secret};
use crate::crd::NotificationPlatform;
use crate::events;
use crate::kafka_topics::{TopicAdmin, TopicsError, TopicsReport};
use crate::status::KafkaOutcome;

/// The Kafka half of a reconcile; never fails the reconcile, so the other children are applied
/// and the problem shows in the status.
pub(super) async fn converge(
    platform: &NotificationPlatform,
    context: &Context,
    namespace: &str,
) -> (KafkaOutcome, Option<TopicsReport>) {
    let brokers = match read_secret(
        &context.client,
        namespace,
        &platform.spec.kafka.brokers_secret_ref,
    )
    .await
    {
        Ok(brokers) => brokers,
        Err(error) => {
            let outcome = KafkaOutcome::Unavailable {
                reason: error.kafka_reason(),
                message: error.to_string(),
            };
            return (outcome, None);
        }
    };
    let result = match TopicAdmin::new(&brokers, context.config.kafka_timeout) {
        Ok(admin) => admin.ensure(&platform.spec.kafka.topics).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(report) => (KafkaOutcome::Checked(report.statuses.clone()), Some(report)),
        Err(error) => {
            let (reason, message) = match error {
                // The brokers are a Secret's value, so the message points to the Secret.
                TopicsError::Unreachable { .. } => {
                    let secret = &platform.spec.kafka.brokers_secret_ref;
                    let message = format!(
                        "{error} (brokers from Secret {namespace}/{} key {})",
                        secret.name, secret.key
                    );
                    ("KafkaUnreachable", message)
                }
                _ => ("KafkaAdminFailed", error.to_string()),
            };
            (KafkaOutcome::Unavailable { reason, message }, None)
        }
    }
}

/// Deletes the platform's topics (deletionPolicy Delete); the Event says they went, or why
/// they were left in place.
pub(super) async fn delete(
    platform: &NotificationPlatform,
    context: &Context,
) -> Result<Event, Error> {
    let namespace = platform.namespace().unwrap_or_default();
    let names: Vec<&str> = platform
        .spec
        .kafka
        .topics
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let (event_type, reason, note) = match read_secret(
        &context.client,
        &namespace,
        &platform.spec.kafka.brokers_secret_ref,
    )
    .await
    {
        Ok(brokers) => {
            let deleted = match TopicAdmin::new(&brokers, context.config.kafka_timeout) {
                Ok(admin) => admin.delete(&names).await,
                Err(error) => Err(error),
            };
            deleted.map_err(|source| Error::DeleteTopics {
                topics: names.join(", "),
                source,
            })?;
            info!(platform = %platform.name_any(), %namespace, topics = ?names, "deleted Kafka topics");
            let note = format!("deleted Kafka topics {}", names.join(", "));
            (EventType::Normal, "TopicsDeleted", note)
        }
        // Deleting the namespace deletes the Secret too, often first: waiting for it would
        // hold the resource, and so the namespace, forever. The topics are left, and said so.
        Err(error @ SecretError::NotFound { .. }) => {
            warn!(platform = %platform.name_any(), %namespace, topics = ?names, %error,
                "Kafka topics left in place: the brokers Secret is gone");
            let note = format!("Kafka topics {} left in place: {error}", names.join(", "));
            (EventType::Warning, "TopicsNotDeleted", note)
        }
        Err(source) => return Err(Error::ReadBrokers { source }),
    };
    Ok(events::event(event_type, reason, note))
}
