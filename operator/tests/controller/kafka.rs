//! Kafka trouble: unreachable brokers, an outage, a topic Kafka refuses.

use std::time::Duration;

use operator::crd::ChildState;
use serde_json::json;
use test_support::{PrivateEnv, settings};

use crate::common::{
    KAFKA_SECRET, UNREACHABLE_BROKERS, condition_of, kafka_partitions, kafka_partitions_at,
    put_secret, start, start_with,
};

#[tokio::test]
async fn wrong_brokers_degrade_until_the_secret_is_fixed() {
    let env = start(UNREACHABLE_BROKERS).await;
    env.create("outage", env.spec(json!({}))).await;

    let platform = env
        .condition("outage", "Degraded", "True", Some("KafkaUnreachable"))
        .await;
    let degraded = condition_of(&platform, "Degraded").unwrap();
    // The brokers are the Secret's value: the message names the Secret instead.
    assert!(
        !degraded.message.contains(UNREACHABLE_BROKERS) && degraded.message.contains(KAFKA_SECRET),
        "{}",
        degraded.message
    );
    env.condition(
        "outage",
        "KafkaTopicsReady",
        "False",
        Some("KafkaUnreachable"),
    )
    .await;
    let event = env.event("Warning", "KafkaUnreachable").await;
    assert!(!event.note.unwrap_or_default().contains(UNREACHABLE_BROKERS));
    // Kafka being down does not hold back the workloads.
    assert!(
        env.deployments
            .get_opt("outage-api")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        env.deployments
            .get_opt("outage-processor")
            .await
            .unwrap()
            .is_some()
    );

    // The Secret is fixed to name the real broker; the backoff retry picks it up.
    put_secret(
        &env.client,
        &env.namespace,
        KAFKA_SECRET,
        "brokers",
        &settings().kafka_brokers,
    )
    .await;
    env.condition("outage", "KafkaTopicsReady", "True", None)
        .await;
    env.condition("outage", "Degraded", "False", None).await;
    env.event("Normal", "Recovered").await;
    let topic = env.notifications_topic.as_str();
    assert_eq!(kafka_partitions(&[topic]).await.get(topic), Some(&3));
}

/// Stops and restarts a Kafka of its own (the shared one serves other tests meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_outage_degrades_then_recovers_when_kafka_returns() {
    let kafka = PrivateEnv::start(&["kafka"]).await;
    let brokers = kafka.var("KAFKA_BROKERS").to_owned();
    // A short resync: nothing in Kubernetes changes when Kafka goes away.
    let env = start_with(&brokers, Duration::from_secs(2)).await;
    env.create("stopped", env.spec(json!({}))).await;
    env.condition("stopped", "KafkaTopicsReady", "True", None)
        .await;

    kafka.stop("kafka").await;
    let degraded = env
        .condition("stopped", "Degraded", "True", Some("KafkaUnreachable"))
        .await;
    let status = degraded.status.unwrap();
    assert!(
        status.topics.iter().all(|t| t.state == ChildState::Unknown),
        "{:?}",
        status.topics
    );
    env.event("Warning", "KafkaUnreachable").await;

    kafka.restart("kafka").await;
    env.condition("stopped", "Degraded", "False", None).await;
    env.condition("stopped", "KafkaTopicsReady", "True", None)
        .await;
    let topic = env.notifications_topic.as_str();
    assert_eq!(
        kafka_partitions_at(&brokers, &[topic]).await.get(topic),
        Some(&3)
    );
}

#[tokio::test]
async fn topic_kafka_refuses_is_reported_until_fixed() {
    let env = start(&settings().kafka_brokers).await;
    // The test environment has one broker: three replicas are impossible.
    let spec = env.spec(json!({"kafka": {"topics": [
        {"name": env.notifications_topic, "replicationFactor": 3},
        {"name": env.dead_letter_topic},
    ]}}));
    env.create("rf", spec).await;
    let platform = env
        .condition("rf", "KafkaTopicsReady", "False", Some("TopicFailed"))
        .await;
    let status = platform.status.unwrap();
    let failed = status
        .topics
        .iter()
        .find(|t| t.name == env.notifications_topic)
        .unwrap();
    assert_eq!(failed.state, ChildState::Failed);
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("creating failed"),
        "{failed:?}"
    );
    env.condition("rf", "Degraded", "True", Some("TopicFailed"))
        .await;
    env.event("Warning", "TopicFailed").await;

    env.patch_spec(
        "rf",
        json!({"kafka": {"topics": [
            {"name": env.notifications_topic, "replicationFactor": 1},
            {"name": env.dead_letter_topic},
        ]}}),
    )
    .await;
    env.condition("rf", "KafkaTopicsReady", "True", None).await;
    let topic = env.notifications_topic.as_str();
    assert_eq!(kafka_partitions(&[topic]).await.get(topic), Some(&3));
}
