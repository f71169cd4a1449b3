//! Changes after creation: to the spec, by hand to the children, and while paused.

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use test_support::settings;

use crate::common::{eventually, kafka_partitions, start, topic_configs};

#[tokio::test]
async fn spec_changes_converge_and_removed_schedules_are_pruned() {
    let env = start(&settings().kafka_brokers).await;
    env.create("conv", env.spec(json!({}))).await;
    env.condition("conv", "KafkaTopicsReady", "True", None)
        .await;
    let cron_jobs: Api<CronJob> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(cron_jobs.get_opt("conv-cleanup").await.unwrap().is_some());

    env.patch_spec(
        "conv",
        json!({
            "api": {"replicas": 3},
            "schedules": [{"name": "report", "schedule": "@daily", "job": "report"}],
            "kafka": {"topics": [
                {"name": env.notifications_topic, "partitions": 5, "config": {"retention.ms": "3600000"}},
                {"name": env.dead_letter_topic, "partitions": 1},
            ]},
        }),
    )
    .await;

    eventually("api replicas 3", || async {
        let d = env.deployments.get("conv-api").await.ok()?;
        (d.spec?.replicas == Some(3)).then_some(())
    })
    .await;
    eventually(
        "CronJob conv-report created and conv-cleanup pruned",
        || async {
            let report = cron_jobs.get_opt("conv-report").await.ok()?;
            let cleanup = cron_jobs.get_opt("conv-cleanup").await.ok()?;
            (report.is_some() && cleanup.is_none()).then_some(())
        },
    )
    .await;
    env.event("Normal", "Pruned").await;
    let topic = env.notifications_topic.as_str();
    eventually("retention.ms changed", || async {
        let configs = topic_configs(topic).await;
        (configs.get("retention.ms").map(String::as_str) == Some("3600000")).then_some(())
    })
    .await;
    env.event("Normal", "TopicConfigChanged").await;
    eventually("partitions raised to 5", || async {
        (kafka_partitions(&[topic]).await.get(topic) == Some(&5)).then_some(())
    })
    .await;
    env.event("Normal", "PartitionsIncreased").await;

    // Fewer partitions are never applied: Kafka cannot remove partitions without losing data.
    env.patch_spec(
        "conv",
        json!({"kafka": {"topics": [
            {"name": env.notifications_topic, "partitions": 2},
            {"name": env.dead_letter_topic, "partitions": 1},
        ]}}),
    )
    .await;
    let platform = eventually("status reports the topic keeps 5 partitions", || async {
        let p = env.platforms.get("conv").await.ok()?;
        let status = p.status.clone()?;
        let t = status.topics.iter().find(|t| t.name == topic)?;
        t.message.as_ref()?.contains("never removed").then_some(p)
    })
    .await;
    assert_eq!(kafka_partitions(&[topic]).await.get(topic), Some(&5));
    let status = platform.status.unwrap();
    assert_eq!(
        status
            .topics
            .iter()
            .find(|t| t.name == topic)
            .unwrap()
            .partitions,
        Some(5)
    );
}

#[tokio::test]
async fn hand_edits_of_owned_objects_are_repaired() {
    let env = start(&settings().kafka_brokers).await;
    env.create("drift", env.spec(json!({}))).await;
    eventually("Deployment drift-api", || async {
        env.deployments.get_opt("drift-api").await.ok()?
    })
    .await;

    // As `kubectl edit` would: another field manager changes replicas and the image.
    let edit = json!({"spec": {"replicas": 7, "template": {"spec": {"containers": [
        {"name": "api-server", "image": "evil/image:latest"}
    ]}}}});
    env.deployments
        .patch(
            "drift-api",
            &PatchParams::default(),
            &Patch::Strategic(&edit),
        )
        .await
        .unwrap();
    eventually("replicas and image restored", || async {
        let spec = env.deployments.get("drift-api").await.ok()?.spec?;
        let image = spec.template.spec?.containers[0].image.clone()?;
        (spec.replicas == Some(2) && image == "registry.test/herald:1.0.0").then_some(())
    })
    .await;

    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.namespace);
    services
        .delete("drift-api", &DeleteParams::default())
        .await
        .unwrap();
    eventually("deleted Service recreated", || async {
        services.get_opt("drift-api").await.ok()?
    })
    .await;
}

#[tokio::test]
async fn paused_platform_is_left_alone_until_resumed() {
    let env = start(&settings().kafka_brokers).await;
    env.create("frozen", env.spec(json!({}))).await;
    env.condition("frozen", "KafkaTopicsReady", "True", None)
        .await;

    let patched = env
        .patch_spec(
            "frozen",
            json!({"paused": true, "api": {"replicas": 4}, "schedules": []}),
        )
        .await;
    let generation = patched.metadata.generation;
    // Once the paused generation is observed, the reconcile that saw it has finished.
    eventually("paused generation observed", || async {
        let p = env.platforms.get("frozen").await.ok()?;
        let status = p.status?;
        let paused = status
            .conditions
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason == "Paused");
        (paused && status.observed_generation == generation).then_some(())
    })
    .await;
    let api = env.deployments.get("frozen-api").await.unwrap();
    assert_eq!(
        api.spec.unwrap().replicas,
        Some(2),
        "paused platform was scaled"
    );
    let cron_jobs: Api<CronJob> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(
        cron_jobs.get_opt("frozen-cleanup").await.unwrap().is_some(),
        "paused platform was pruned"
    );

    env.patch_spec("frozen", json!({"paused": false})).await;
    eventually("resumed: replicas 4 and schedule pruned", || async {
        let replicas = env.deployments.get("frozen-api").await.ok()?.spec?.replicas;
        let cleanup = cron_jobs.get_opt("frozen-cleanup").await.ok()?;
        (replicas == Some(4) && cleanup.is_none()).then_some(())
    })
    .await;
}
