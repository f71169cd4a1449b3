//! Referenced Secrets that are missing.

use serde_json::json;
use test_support::settings;

use crate::common::{condition_of, put_secret, start};

#[tokio::test]
async fn missing_kafka_secret_is_reported() {
    let env = start(&settings().kafka_brokers).await;
    let spec = env.spec(json!({"kafka": {"brokersSecretRef": {"name": "nope", "key": "brokers"}}}));
    env.create("nosecret", spec).await;
    let platform = env
        .condition("nosecret", "Degraded", "True", Some("KafkaSecretNotFound"))
        .await;
    let degraded = condition_of(&platform, "Degraded").unwrap();
    assert!(degraded.message.contains("nope"), "{}", degraded.message);
    env.event("Warning", "KafkaSecretNotFound").await;
}

#[tokio::test]
async fn missing_database_secret_is_reported() {
    let env = start(&settings().kafka_brokers).await;
    let spec = env.spec(json!({"database": {"name": "no-db", "key": "url"}}));
    env.create("nodb", spec).await;
    let platform = env
        .condition("nodb", "Degraded", "True", Some("SecretMissing"))
        .await;
    let ready = condition_of(&platform, "Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert!(ready.message.contains("no-db"), "{}", ready.message);
    env.event("Warning", "SecretMissing").await;

    // Creating the Secret is enough; no change to the platform is needed.
    put_secret(
        &env.client,
        &env.namespace,
        "no-db",
        "url",
        "postgres://herald@db.invalid/herald",
    )
    .await;
    env.condition("nodb", "Degraded", "False", None).await;
}
