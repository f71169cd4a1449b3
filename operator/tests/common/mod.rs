//! Harness for the integration tests: a fresh namespace on the test environment's API server,
//! the CRD installed, Secrets pointing at the real Kafka, and the controller running in-process
//! scoped to that namespace.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use operator::controller::{self, Config};
use operator::crd::{NotificationPlatform, NotificationPlatformSpec};
use operator::metrics::Metrics;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use serde_json::json;
use test_support::{kube_client, kube_namespace, settings, unique_name};
use tokio::task::JoinHandle;

pub const DB_SECRET: &str = "herald-db";
pub const REDIS_SECRET: &str = "herald-redis";
pub const KAFKA_SECRET: &str = "herald-kafka";
/// Where nothing listens: Kafka counts as unreachable.
pub const UNREACHABLE_BROKERS: &str = "127.0.0.1:1";

pub struct Env {
    pub client: Client,
    pub namespace: String,
    pub platforms: Api<NotificationPlatform>,
    pub deployments: Api<Deployment>,
    /// Unique per test: Kafka topics are cluster-wide.
    pub notifications_topic: String,
    pub dead_letter_topic: String,
    controller: JoinHandle<()>,
}

/// The test environment runs no namespace or garbage-collector controller, so a namespace and
/// its contents outlive the test. Services would exhaust the cluster-IP range of the shared
/// API server and topics would pile up in the shared Kafka: those two are removed.
impl Drop for Env {
    fn drop(&mut self) {
        self.controller.abort();
        let namespace = self.namespace.clone();
        let topics = [
            self.notifications_topic.clone(),
            self.dead_letter_topic.clone(),
        ];
        // The test's runtime is blocked in this drop, so the cleanup needs a runtime (and
        // clients) of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                let services: Api<Service> = Api::namespaced(kube_client().await, &namespace);
                for service in services
                    .list_metadata(&ListParams::default())
                    .await
                    .into_iter()
                    .flat_map(|l| l.items)
                {
                    let _ = services
                        .delete(&service.name_any(), &DeleteParams::default())
                        .await;
                }
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", &settings().kafka_brokers)
                    .create()
                    .expect("Kafka admin client");
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                let _ = admin.delete_topics(&names, &AdminOptions::new()).await;
            });
        });
        if cleanup.join().is_err() {
            eprintln!("cleaning up test namespace {} failed", self.namespace);
        }
    }
}

/// A namespace with the CRD, the Secrets and a running controller.
pub async fn start(kafka_brokers: &str) -> Env {
    start_with(kafka_brokers, Config::default().resync).await
}

/// As [`start`], with the periodic re-check of healthy platforms every `resync`.
pub async fn start_with(kafka_brokers: &str, resync: Duration) -> Env {
    let ns = kube_namespace().await;
    install_crd(&ns.client).await;
    let client = ns.client.clone();
    for (name, key, value) in [
        (DB_SECRET, "url", "postgres://herald@db.invalid/herald"),
        (REDIS_SECRET, "url", "redis://redis.invalid:6379"),
        (KAFKA_SECRET, "brokers", kafka_brokers),
    ] {
        put_secret(&client, &ns.name, name, key, value).await;
    }
    let config = Config {
        namespace: Some(ns.name.clone()),
        kafka_timeout: Duration::from_secs(3),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(4),
        instance: Some("integration-test".into()),
        resync,
    };
    let controller = tokio::spawn(controller::run(
        client.clone(),
        config,
        Metrics::new(),
        std::future::pending(),
    ));
    Env {
        platforms: Api::namespaced(client.clone(), &ns.name),
        deployments: Api::namespaced(client.clone(), &ns.name),
        client,
        namespace: ns.name,
        notifications_topic: unique_name("op-notifications"),
        dead_letter_topic: unique_name("op-dlq"),
        controller,
    }
}

/// Applies the CRD (idempotent; tests run in parallel) and waits until it is served.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = NotificationPlatform::crd();
    let name = crd.name_any();
    crds.patch(
        &name,
        &PatchParams::apply("herald-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("installing the CRD: {e}"));
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD not established within 30 s")
    .expect("watching the CRD");
}

/// Minimal ServiceMonitor and PrometheusRule CRDs (any content accepted), as far as the operator
/// needs them: to be served under monitoring.coreos.com/v1.
pub async fn install_monitoring_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (kind, plural) in [
        ("ServiceMonitor", "servicemonitors"),
        ("PrometheusRule", "prometheusrules"),
    ] {
        let name = format!("{plural}.monitoring.coreos.com");
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": "monitoring.coreos.com",
                "names": {"kind": kind, "plural": plural},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                }],
            },
        }))
        .expect("CRD JSON");
        crds.patch(
            &name,
            &PatchParams::apply("herald-operator-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("installing {name}: {e}"));
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD not established within 30 s")
        .expect("watching the CRD");
    }
}

pub async fn put_secret(client: &Client, namespace: &str, name: &str, key: &str, value: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            key.to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::apply("herald-operator-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap_or_else(|e| panic!("writing Secret {name}: {e}"));
}

impl Env {
    /// A valid spec with this test's topics and one schedule; `extra` is merged on top.
    pub fn spec(&self, extra: serde_json::Value) -> NotificationPlatformSpec {
        serde_json::from_value(self.spec_json(extra)).expect("test spec deserializes")
    }

    pub fn spec_json(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut spec = json!({
            "image": {"repository": "registry.test/herald", "tag": "1.0.0"},
            "database": {"name": DB_SECRET, "key": "url"},
            "redis": {"name": REDIS_SECRET, "key": "url"},
            "kafka": {
                "brokersSecretRef": {"name": KAFKA_SECRET, "key": "brokers"},
                "topics": [
                    {"name": self.notifications_topic, "partitions": 3, "config": {"retention.ms": "86400000"}},
                    {"name": self.dead_letter_topic, "partitions": 1},
                ],
                "notificationsTopic": self.notifications_topic,
                "deadLetterTopic": self.dead_letter_topic,
            },
            "schedules": [{"name": "cleanup", "schedule": "0 3 * * *", "job": "cleanup", "args": ["--older-than", "30d"]}],
        });
        merge(&mut spec, extra);
        spec
    }

    pub async fn create(&self, name: &str, spec: NotificationPlatformSpec) -> NotificationPlatform {
        self.platforms
            .create(
                &PostParams::default(),
                &NotificationPlatform::new(name, spec),
            )
            .await
            .unwrap_or_else(|e| panic!("creating NotificationPlatform {name}: {e}"))
    }

    /// Merge-patches the spec, as `kubectl patch --type merge` would.
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> NotificationPlatform {
        self.platforms
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap_or_else(|e| panic!("patching NotificationPlatform {name}: {e}"))
    }

    /// Stands in for the kubelet and the Deployment controller, which do not run in the test
    /// environment: reports all desired replicas of the Deployment as ready.
    pub async fn mark_ready(&self, deployment: &str) {
        let current = self
            .deployments
            .get(deployment)
            .await
            .expect("deployment exists");
        let replicas = current.spec.and_then(|s| s.replicas).unwrap_or(1);
        let status = json!({"status": {
            "observedGeneration": current.metadata.generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }});
        self.deployments
            .patch_status(deployment, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap_or_else(|e| panic!("setting the status of {deployment}: {e}"));
    }

    /// Waits for a condition of the platform's status.
    pub async fn condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: Option<&str>,
    ) -> NotificationPlatform {
        eventually(
            &format!("{name}: condition {type_}={status} ({reason:?})"),
            || async {
                let platform = self.platforms.get(name).await.ok()?;
                let condition = condition_of(&platform, type_)?.clone();
                (condition.status == status && reason.is_none_or(|r| condition.reason == r))
                    .then_some(platform)
            },
        )
        .await
    }

    /// Waits until the platform is gone, its finalizer released.
    pub async fn deleted(&self, name: &str) {
        eventually(&format!("platform {name} deleted"), || async {
            self.platforms
                .get_opt(name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        })
        .await;
    }

    /// Waits for an Event about the platform with this type and reason.
    pub async fn event(&self, type_: &str, reason: &str) -> Event {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        eventually(&format!("{type_} event {reason}"), || async {
            events
                .list(&Default::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.type_.as_deref() == Some(type_) && e.reason.as_deref() == Some(reason))
        })
        .await
    }
}

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(base), serde_json::Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (base, extra) => *base = extra,
    }
}

/// Polls `check` until it returns `Some`, for up to 60 s; convergence takes as long as it takes,
/// so tests never assert on timing.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 60 s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Partition counts of the given topics that exist on the test environment's Kafka.
pub async fn kafka_partitions(topics: &[&str]) -> HashMap<String, usize> {
    kafka_partitions_at(&settings().kafka_brokers, topics).await
}

pub async fn kafka_partitions_at(brokers: &str, topics: &[&str]) -> HashMap<String, usize> {
    let brokers = brokers.to_owned();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("Kafka admin client");
    let metadata = tokio::task::spawn_blocking(move || {
        admin.inner().fetch_metadata(None, Duration::from_secs(10))
    })
    .await
    .expect("metadata task")
    .unwrap_or_else(|e| panic!("Kafka at {} did not answer: {e}", settings().kafka_brokers));
    metadata
        .topics()
        .iter()
        .filter(|t| topics.contains(&t.name()) && t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len()))
        .collect()
}

/// The configs set on a topic (not broker defaults), from the test environment's Kafka.
pub async fn topic_configs(topic: &str) -> BTreeMap<String, String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings().kafka_brokers)
        .create()
        .expect("Kafka admin client");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .expect("describing topic configs");
    described
        .into_iter()
        .flat_map(|result| result.expect("topic exists").entries)
        .filter(|entry| entry.source == ConfigSource::DynamicTopic)
        .filter_map(|entry| Some((entry.name, entry.value?)))
        .collect()
}

/// The platform's condition of this type, if its status has one.
pub fn condition_of<'a>(platform: &'a NotificationPlatform, type_: &str) -> Option<&'a Condition> {
    platform
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}
