//! Why a reconcile failed: the step, the object it was about, and the cause. The message
//! becomes a Warning Event and a log line; it never carries a Secret's value.

use super::kube_message::kube_message;
use super::secrets::SecretError;
use crate::kafka_topics::TopicsError;

#[derive(Debug, thiserror::Error)]
pub(super) enum Error {
    #[error("NotificationPlatform {name} has no namespace")]
    NoNamespace { name: String },
    #[error("adding the Kafka topics finalizer to NotificationPlatform {name}: {}", kube_message(.source))]
    AddFinalizer { name: String, source: kube::Error },
    #[error("removing the Kafka topics finalizer from NotificationPlatform {name}: {}", kube_message(.source))]
    RemoveFinalizer { name: String, source: kube::Error },
    #[error("applying {kind} {name}: {}", kube_message(.source))]
    ApplyChild {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("listing the owned {kind} objects to prune: {}", kube_message(.source))]
    ListChildren { kind: String, source: kube::Error },
    #[error("deleting {kind} {name}, no longer in the spec: {}", kube_message(.source))]
    PruneChild {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("discovering the API group {group_version}: {}", kube_message(.source))]
    DiscoverApiGroup {
        group_version: &'static str,
        source: kube::Error,
    },
    #[error("writing the status of NotificationPlatform {name}: {}", kube_message(.source))]
    PatchStatus { name: String, source: kube::Error },
    #[error("looking up the generated API keys Secret {name}: {}", kube_message(.source))]
    ReadApiKeysSecret { name: String, source: kube::Error },
    #[error("generating an API key: the system's random source failed: {source}")]
    GenerateApiKey { source: getrandom::Error },
    #[error("creating the API keys Secret {name}: {}", kube_message(.source))]
    CreateApiKeysSecret { name: String, source: kube::Error },
    #[error("cannot read the Kafka brokers: {source}")]
    ReadBrokers { source: SecretError },
    #[error("deleting Kafka topics {topics}: {source}")]
    DeleteTopics { topics: String, source: TopicsError },
}

impl Error {
    /// The `reason` label of the failure metric: the labels from before the variants named
    /// the step, so that queries on them keep working and the series stay few.
    pub(super) fn metric_label(&self) -> &'static str {
        match self {
            Self::AddFinalizer { .. }
            | Self::RemoveFinalizer { .. }
            | Self::ApplyChild { .. }
            | Self::ListChildren { .. }
            | Self::PruneChild { .. }
            | Self::DiscoverApiGroup { .. }
            | Self::PatchStatus { .. }
            | Self::ReadApiKeysSecret { .. }
            | Self::CreateApiKeysSecret { .. } => "kube",
            Self::GenerateApiKey { .. } => "random",
            Self::DeleteTopics { .. } => "kafka",
            Self::ReadBrokers { .. } => "brokers_secret",
            Self::NoNamespace { .. } => "no_namespace",
        }
    }
}
