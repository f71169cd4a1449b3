//! Why a reconcile failed; the message becomes a Warning Event and a log line.

use crate::kafka_topics::TopicsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Topics(#[from] TopicsError),
    #[error("cannot read the Kafka brokers: {0}")]
    BrokersSecret(String),
    #[error("NotificationPlatform {0} has no namespace")]
    NoNamespace(String),
}

impl Error {
    pub(super) fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Topics(_) => "kafka",
            Self::BrokersSecret(_) => "brokers_secret",
            Self::NoNamespace(_) => "no_namespace",
        }
    }
}
