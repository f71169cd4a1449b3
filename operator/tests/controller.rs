//! The operator against the real kube-apiserver and Kafka of the test environment
//! (`scripts/testenv up kube kafka`), with the controller running in-process.

mod common;

use std::time::Duration;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use operator::builders;
use operator::controller::FINALIZER;
use operator::crd::{ChildState, NotificationPlatform};
use serde_json::json;
use test_support::{PrivateEnv, settings};

use common::{
    KAFKA_SECRET, UNREACHABLE_BROKERS, eventually, kafka_partitions, kafka_partitions_at,
    put_secret, start, start_with, topic_configs,
};

#[tokio::test]
async fn creates_children_and_topics_then_becomes_ready() {
    let env = start(&settings().kafka_brokers).await;
    env.create("demo", env.spec(json!({}))).await;
    // Status is written after every child was applied.
    let platform = env
        .condition("demo", "KafkaTopicsReady", "True", None)
        .await;

    let api = env.deployments.get("demo-api").await.unwrap();
    let spec = api.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.test/herald:1.0.0")
    );
    assert_eq!(container.command.as_deref().unwrap(), ["api-server"]);
    let env_var = |name: &str| {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .cloned()
            .unwrap()
    };
    let brokers = env_var("KAFKA_BROKERS")
        .value_from
        .unwrap()
        .secret_key_ref
        .unwrap();
    assert_eq!(
        (brokers.name.as_str(), brokers.key.as_str()),
        (KAFKA_SECRET, "brokers")
    );
    assert!(
        env_var("OTEL_RESOURCE_ATTRIBUTES")
            .value
            .unwrap()
            .contains("herald.platform=demo")
    );
    let owner = &api.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("NotificationPlatform", Some(true))
    );

    let processor = env.deployments.get("demo-processor").await.unwrap();
    let command = processor.spec.unwrap().template.spec.unwrap().containers[0]
        .command
        .clone()
        .unwrap();
    assert_eq!(command, ["processor", "consume"]);

    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.namespace);
    let port = &services
        .get("demo-api")
        .await
        .unwrap()
        .spec
        .unwrap()
        .ports
        .unwrap()[0];
    assert_eq!(port.port, 80);
    assert!(services.get_opt("demo-processor").await.unwrap().is_some());

    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let config = config_maps.get("demo-config").await.unwrap().data.unwrap();
    assert_eq!(config["KAFKA_NOTIFICATIONS_TOPIC"], env.notifications_topic);
    let dashboards = config_maps.get("demo-dashboards").await.unwrap();
    assert_eq!(
        dashboards.metadata.labels.unwrap()["grafana_dashboard"],
        "1"
    );

    let cron_jobs: Api<CronJob> = Api::namespaced(env.client.clone(), &env.namespace);
    let cleanup = cron_jobs.get("demo-cleanup").await.unwrap().spec.unwrap();
    assert_eq!(cleanup.schedule, "0 3 * * *");
    let job_pod = cleanup.job_template.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        job_pod.containers[0].command.as_deref().unwrap(),
        ["processor", "job", "cleanup", "--older-than", "30d"]
    );

    // Topics exist, but no pod runs: Kafka is fine, the rollout is not done.
    let configs = topic_configs(&env.notifications_topic).await;
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("86400000")
    );
    let topics = [
        env.notifications_topic.as_str(),
        env.dead_letter_topic.as_str(),
    ];
    let partitions = kafka_partitions(&topics).await;
    assert_eq!(partitions.get(topics[0]), Some(&3));
    assert_eq!(partitions.get(topics[1]), Some(&1));
    let status = platform.status.unwrap();
    assert_eq!(status.observed_generation, platform.metadata.generation);
    assert!(status.topics.iter().all(|t| t.state == ChildState::Ready));
    env.condition("demo", "Ready", "False", Some("RollingOut"))
        .await;
    env.event("Normal", "TopicCreated").await;

    env.mark_ready("demo-api").await;
    env.mark_ready("demo-processor").await;
    let ready = env.condition("demo", "Ready", "True", None).await;
    let status = ready.status.unwrap();
    assert_eq!(
        (status.api.ready_replicas, status.processor.ready_replicas),
        (2, 1)
    );
    env.event("Normal", "Ready").await;
}

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
async fn invalid_resources_are_rejected_by_the_api_server() {
    let env = start(&settings().kafka_brokers).await;
    let platforms: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &ApiResource::erase::<NotificationPlatform>(&()),
    );
    let cases = [
        (json!({"api": {"replicas": 100}}), "spec.api.replicas"),
        (
            json!({"schedules": [{"name": "x", "schedule": "every minute", "job": "report"}]}),
            "schedule must be a cron expression",
        ),
        (
            json!({"schedules": [
                {"name": "x", "schedule": "@daily", "job": "report"},
                {"name": "x", "schedule": "@hourly", "job": "cleanup"},
            ]}),
            "Duplicate value",
        ),
        (
            json!({"kafka": {"notificationsTopic": "missing"}}),
            "notificationsTopic must name one of kafka.topics",
        ),
        (
            json!({"schedules": [{"name": "x", "schedule": "@daily", "job": "backup"}]}),
            "supported values",
        ),
    ];
    for (i, (extra, expected)) in cases.into_iter().enumerate() {
        let name = format!("invalid-{i}");
        // Raw JSON: some of these cases do not even deserialize into the Rust types.
        let mut object =
            DynamicObject::new(&name, &ApiResource::erase::<NotificationPlatform>(&()));
        object.data = json!({"spec": env.spec_json(extra.clone())});
        let error = platforms
            .create(&PostParams::default(), &object)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        let message = error.expect_err(&format!("{extra} was accepted"));
        assert!(
            message.contains(expected),
            "{extra}: expected {expected:?} in {message}"
        );
    }
}

#[tokio::test]
async fn schedule_the_api_server_rejects_is_reported_in_status_and_events() {
    let env = start(&settings().kafka_brokers).await;
    // Five fields pass the admission shape check; minute 61 does not exist.
    let spec = env.spec(
        json!({"schedules": [{"name": "broken", "schedule": "61 * * * *", "job": "report"}]}),
    );
    env.create("sched", spec).await;

    let platform = env
        .condition("sched", "Degraded", "True", Some("ScheduleRejected"))
        .await;
    let status = platform.status.unwrap();
    let broken = &status.schedules[0];
    assert_eq!(broken.state, ChildState::Failed);
    assert!(
        broken
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("schedule"),
        "{broken:?}"
    );
    env.condition("sched", "SchedulesReady", "False", Some("ScheduleRejected"))
        .await;
    env.event("Warning", "ScheduleRejected").await;
    // The rest of the platform is applied regardless.
    assert!(
        env.deployments
            .get_opt("sched-api")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn wrong_brokers_degrade_until_the_secret_is_fixed() {
    let env = start(UNREACHABLE_BROKERS).await;
    env.create("outage", env.spec(json!({}))).await;

    let platform = env
        .condition("outage", "Degraded", "True", Some("KafkaUnreachable"))
        .await;
    let degraded = platform
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
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
async fn missing_kafka_secret_is_reported() {
    let env = start(&settings().kafka_brokers).await;
    let spec = env.spec(json!({"kafka": {"brokersSecretRef": {"name": "nope", "key": "brokers"}}}));
    env.create("nosecret", spec).await;
    let platform = env
        .condition("nosecret", "Degraded", "True", Some("KafkaSecretNotFound"))
        .await;
    let degraded = platform
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(degraded.message.contains("nope"), "{}", degraded.message);
    env.event("Warning", "KafkaSecretNotFound").await;
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

#[tokio::test]
async fn missing_database_secret_is_reported() {
    let env = start(&settings().kafka_brokers).await;
    let spec = env.spec(json!({"database": {"name": "no-db", "key": "url"}}));
    env.create("nodb", spec).await;
    let platform = env
        .condition("nodb", "Degraded", "True", Some("SecretMissing"))
        .await;
    let ready = platform
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
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

#[tokio::test]
async fn prometheus_operator_objects_follow_the_toggles() {
    let env = start(&settings().kafka_brokers).await;
    // Stands in for an installed Prometheus Operator; the operator detects the API group.
    common::install_monitoring_crds(&env.client).await;
    env.create("mon", env.spec(json!({}))).await;
    env.condition("mon", "KafkaTopicsReady", "True", None).await;

    let service_monitors: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &builders::service_monitor_resource(),
    );
    let rules: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &builders::prometheus_rule_resource(),
    );
    let monitor = service_monitors.get("mon").await.unwrap();
    let ports: Vec<_> = monitor.data["spec"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["port"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["http", "metrics"]);
    assert!(rules.get_opt("mon").await.unwrap().is_some());

    env.patch_spec("mon", json!({"observability": {"serviceMonitor": false}}))
        .await;
    eventually("ServiceMonitor pruned", || async {
        service_monitors
            .get_opt("mon")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        rules.get_opt("mon").await.unwrap().is_some(),
        "PrometheusRule is still wanted"
    );
}
