//! The Secrets a platform references: the Kafka brokers the operator itself needs, and the
//! database and Redis URLs only the pods read.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::crd::{NotificationPlatform, SecretKeyRef};

/// Why a referenced Secret key cannot be used.
#[derive(Debug)]
struct SecretProblem {
    /// Condition reason, e.g. `SecretNotFound`.
    reason: &'static str,
    message: String,
}

/// The value of a Secret key in the platform's namespace.
async fn read_secret(
    client: &Client,
    namespace: &str,
    secret: &SecretKeyRef,
) -> Result<String, SecretProblem> {
    let problem = |reason, message| SecretProblem { reason, message };
    let name = format!("Secret {namespace}/{}", secret.name);
    let found = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&secret.name)
        .await
        .map_err(|e| problem("SecretUnreadable", format!("reading {name}: {e}")))?
        .ok_or_else(|| problem("SecretNotFound", format!("{name} does not exist")))?;
    let value = found
        .data
        .as_ref()
        .and_then(|data| data.get(&secret.key))
        .ok_or_else(|| {
            problem(
                "SecretKeyMissing",
                format!("{name} has no key {}", secret.key),
            )
        })?;
    String::from_utf8(value.0.clone())
        .map(|value| value.trim().to_owned())
        .map_err(|_| {
            problem(
                "SecretInvalid",
                format!("{name} key {} is not UTF-8", secret.key),
            )
        })
}

/// The bootstrap servers from the referenced Secret, or a condition reason and message.
pub(super) async fn read_brokers(
    client: &Client,
    namespace: &str,
    secret: &SecretKeyRef,
) -> Result<String, (&'static str, String)> {
    read_secret(client, namespace, secret).await.map_err(|p| {
        let reason = match p.reason {
            "SecretNotFound" => "KafkaSecretNotFound",
            "SecretKeyMissing" => "KafkaSecretKeyMissing",
            "SecretInvalid" => "KafkaSecretInvalid",
            _ => "KafkaSecretUnreadable",
        };
        (reason, p.message)
    })
}

/// The database and Redis Secrets the pods need; without them no pod can start, so this is
/// reported rather than left to a CreateContainerConfigError nobody looks at.
pub(super) async fn missing_secrets(
    client: &Client,
    namespace: &str,
    platform: &NotificationPlatform,
) -> Vec<String> {
    let mut missing = vec![];
    for (what, secret) in [
        ("database", &platform.spec.database),
        ("redis", &platform.spec.redis),
    ] {
        if let Err(problem) = read_secret(client, namespace, secret).await {
            missing.push(format!("{what}: {}", problem.message));
        }
    }
    missing
}
