//! The children a platform gets, and what it takes to call it ready.

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::api::DynamicObject;
use operator::builders;
use operator::crd::ChildState;
use serde_json::json;
use test_support::settings;

use crate::common::{self, KAFKA_SECRET, eventually, kafka_partitions, start, topic_configs};

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
    // The api-server's unauthenticated metrics, apart from its (maybe public) Service.
    let metrics = services
        .get("demo-api-metrics")
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(metrics.ports.unwrap()[0].port, 9090);
    assert_eq!(metrics.cluster_ip.as_deref(), Some("None"));

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
async fn a_child_the_api_server_refuses_fails_the_reconcile_and_names_it() {
    let env = start(&settings().kafka_brokers).await;
    // The CRD schema accepts any quantities; the Deployment's pod validation refuses requests
    // above limits.
    let resources = |request: &str| {
        json!({"api": {"resources": {
            "requests": {"memory": request},
            "limits": {"memory": "1Gi"},
        }}})
    };
    env.create("refused", env.spec(resources("2Gi"))).await;
    let event = env.event("Warning", "ReconcileFailed").await;
    let note = event.note.unwrap_or_default();
    // The API server's message, without kube's debug dump of the whole Status.
    assert!(
        note.starts_with("applying Deployment refused-api: ")
            && note.contains("must be less than or equal to memory limit")
            && !note.contains("Status {"),
        "{note}"
    );

    env.patch_spec("refused", resources("1Gi")).await;
    env.condition("refused", "KafkaTopicsReady", "True", None)
        .await;
    assert!(
        env.deployments
            .get_opt("refused-api")
            .await
            .unwrap()
            .is_some()
    );
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
    assert_eq!(ports, ["metrics"]);
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
