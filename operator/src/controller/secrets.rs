//! The Secrets a platform references: the Kafka brokers the operator itself needs, and the
//! database and Redis URLs and the authentication keys only the pods read.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::kube_message::kube_message;
use crate::builders::api_keys_ref;
use crate::crd::{NotificationPlatform, SecretKeyRef};

/// Why a referenced Secret key cannot be used. `secret` is `namespace/name`; the messages end
/// up in status conditions and Events, so they name the Secret and key, never the value.
#[derive(Debug, thiserror::Error)]
pub(super) enum SecretError {
    #[error("reading Secret {secret}: {}", kube_message(.source))]
    Unreadable { secret: String, source: kube::Error },
    #[error("Secret {secret} does not exist")]
    NotFound { secret: String },
    #[error("Secret {secret} has no key {key}")]
    KeyMissing { secret: String, key: String },
    #[error("Secret {secret} key {key} is not UTF-8")]
    NotUtf8 { secret: String, key: String },
}

impl SecretError {
    /// The reason of the KafkaTopicsReady condition when this is the brokers Secret.
    pub(super) fn kafka_reason(&self) -> &'static str {
        match self {
            Self::Unreadable { .. } => "KafkaSecretUnreadable",
            Self::NotFound { .. } => "KafkaSecretNotFound",
            Self::KeyMissing { .. } => "KafkaSecretKeyMissing",
            Self::NotUtf8 { .. } => "KafkaSecretInvalid",
        }
    }
}

/// The value of a Secret key in the platform's namespace.
pub(super) async fn read_secret(
    client: &Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<String, SecretError> {
    let value = read_bytes(client, namespace, reference).await?;
    String::from_utf8(value)
        .map(|value| value.trim().to_owned())
        // Not the conversion error as the source: it holds the value.
        .map_err(|_| SecretError::NotUtf8 {
            secret: format!("{namespace}/{}", reference.name),
            key: reference.key.clone(),
        })
}

async fn read_bytes(
    client: &Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<Vec<u8>, SecretError> {
    let secret = || format!("{namespace}/{}", reference.name);
    let found = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&reference.name)
        .await
        .map_err(|source| SecretError::Unreadable {
            secret: secret(),
            source,
        })?
        .ok_or_else(|| SecretError::NotFound { secret: secret() })?;
    found
        .data
        .and_then(|mut data| data.remove(&reference.key))
        .map(|value| value.0)
        .ok_or_else(|| SecretError::KeyMissing {
            secret: secret(),
            key: reference.key.clone(),
        })
}

/// The Secrets the pods need; without them no pod can start, so this is reported rather than
/// left to a CreateContainerConfigError or a volume that never mounts, which nobody looks at.
pub(super) async fn missing_secrets(
    client: &Client,
    namespace: &str,
    platform: &NotificationPlatform,
) -> Vec<String> {
    let mut missing = vec![];
    // Environment variables: the values must be text.
    for (what, secret) in [
        ("database", &platform.spec.database),
        ("redis", &platform.spec.redis),
    ] {
        if let Err(error) = read_secret(client, namespace, secret).await {
            missing.push(format!("{what}: {error}"));
        }
    }
    // Mounted files: an HMAC secret may be any bytes.
    let jwt = platform.spec.auth.jwt.as_ref();
    let api_keys = api_keys_ref(platform);
    for (what, secret) in [
        ("jwt secret", jwt.and_then(|j| j.secret_ref.as_ref())),
        (
            "jwt public key",
            jwt.and_then(|j| j.public_key_secret_ref.as_ref()),
        ),
        ("api keys", api_keys.as_ref()),
    ] {
        let Some(secret) = secret else { continue };
        if let Err(error) = read_bytes(client, namespace, secret).await {
            missing.push(format!("{what}: {error}"));
        }
    }
    missing
}
