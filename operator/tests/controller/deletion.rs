//! Deleting a platform: its topics go or stay by deletionPolicy, and the finalizer lets go.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::DeleteParams;
use operator::controller::FINALIZER;
use serde_json::json;
use test_support::settings;

use crate::common::{KAFKA_SECRET, eventually, kafka_partitions, start};

#[tokio::test]
async fn delete_policy_removes_topics_and_then_the_finalizer() {
    let env = start(&settings().kafka_brokers).await;
    env.create(
        "gone",
        env.spec(json!({"kafka": {"deletionPolicy": "Delete"}})),
    )
    .await;
    let platform = env
        .condition("gone", "KafkaTopicsReady", "True", None)
        .await;
    assert!(
        platform
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&FINALIZER.to_owned())
    );
    let topics = [
        env.notifications_topic.as_str(),
        env.dead_letter_topic.as_str(),
    ];
    assert_eq!(kafka_partitions(&topics).await.len(), 2);

    env.platforms
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    env.deleted("gone").await;
    eventually("topics deleted", || async {
        kafka_partitions(&topics).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn delete_policy_without_the_brokers_secret_leaves_topics_and_releases_the_resource() {
    let env = start(&settings().kafka_brokers).await;
    env.create(
        "orphan",
        env.spec(json!({"kafka": {"deletionPolicy": "Delete"}})),
    )
    .await;
    env.condition("orphan", "KafkaTopicsReady", "True", None)
        .await;
    // What deleting the whole namespace does: the Secret may go before the resource.
    Api::<Secret>::namespaced(env.client.clone(), &env.namespace)
        .delete(KAFKA_SECRET, &DeleteParams::default())
        .await
        .unwrap();
    env.platforms
        .delete("orphan", &DeleteParams::default())
        .await
        .unwrap();
    env.deleted("orphan").await;
    let event = env.event("Warning", "TopicsNotDeleted").await;
    assert!(
        event
            .note
            .unwrap_or_default()
            .contains(&env.notifications_topic),
        "the event names the topics left behind"
    );
    let topic = env.notifications_topic.as_str();
    assert_eq!(kafka_partitions(&[topic]).await.get(topic), Some(&3));
}

#[tokio::test]
async fn retain_policy_keeps_topics_without_a_finalizer() {
    let env = start(&settings().kafka_brokers).await;
    env.create("kept", env.spec(json!({}))).await;
    let platform = env
        .condition("kept", "KafkaTopicsReady", "True", None)
        .await;
    assert!(
        !platform
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&FINALIZER.to_owned())
    );
    env.platforms
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    env.deleted("kept").await;
    let topic = env.notifications_topic.as_str();
    assert_eq!(kafka_partitions(&[topic]).await.get(topic), Some(&3));
}
