//! The controller: watches NotificationPlatforms and the objects they own, applies the desired
//! children with server-side apply, prunes what is no longer desired, converges Kafka topics
//! and writes the status when it changes.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{debug, info, warn};

use crate::builders::{
    FIELD_MANAGER, LABEL_MANAGED_BY, MONITORING_GROUP_VERSION, api_deployment, api_service,
    config_map, cron_job, cron_job_name, dashboards_config_map, owned_selector,
    processor_deployment, processor_service, prometheus_rule, prometheus_rule_resource,
    service_monitor, service_monitor_resource,
};
use crate::crd::{
    ChildState, ComponentStatus, DeletionPolicy, NotificationPlatform, NotificationPlatformStatus,
    ScheduleStatus, SecretKeyRef,
};
use crate::events;
use crate::kafka_topics::{TopicAdmin, TopicsError, TopicsReport};
use crate::metrics::Metrics;
use crate::status::{self, KafkaOutcome, Observed};

/// Present while topics must be deleted before the resource may go (deletionPolicy Delete).
pub const FINALIZER: &str = "herald.dev/kafka-topics";

#[derive(Debug, Clone)]
pub struct Config {
    /// Watch one namespace; all namespaces when unset.
    pub namespace: Option<String>,
    /// How long a Kafka admin request may take before Kafka counts as unreachable.
    pub kafka_timeout: Duration,
    /// Periodic re-check of a healthy platform (catches changes to topics made outside Kubernetes).
    pub resync: Duration,
    /// First delay after a failure; doubled per consecutive failure of the same object.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Identity in Events (`reportingInstance`), e.g. the pod name.
    pub instance: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            namespace: None,
            kafka_timeout: Duration::from_secs(10),
            resync: Duration::from_secs(300),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            instance: None,
        }
    }
}

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
    fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube(_) => "kube",
            Self::Topics(_) => "kafka",
            Self::BrokersSecret(_) => "brokers_secret",
            Self::NoNamespace(_) => "no_namespace",
        }
    }
}

struct Context {
    client: Client,
    config: Config,
    recorder: Recorder,
    metrics: Metrics,
    backoff: Backoff,
}

/// Per-object exponential backoff: `base`, doubled per consecutive failure, at most `max`.
struct Backoff {
    base: Duration,
    max: Duration,
    /// Consecutive failures by object uid.
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::default(),
        }
    }

    /// The delay before retrying `platform`, counting one more failure.
    fn next(&self, platform: &NotificationPlatform) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures
            .entry(platform.uid().unwrap_or_default())
            .or_insert(0);
        let delay = self.base.saturating_mul(2u32.saturating_pow(*count));
        *count = count.saturating_add(1);
        delay.min(self.max)
    }

    fn reset(&self, platform: &NotificationPlatform) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&platform.uid().unwrap_or_default());
    }
}

impl Context {
    async fn publish(&self, platform: &NotificationPlatform, event: &Event) {
        if let Err(error) = self
            .recorder
            .publish(event, &platform.object_ref(&()))
            .await
        {
            warn!(%error, reason = %event.reason, "publishing an event failed");
        }
    }
}

/// Runs the controller until `shutdown` completes, then finishes the reconciles in flight.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let namespace = config.namespace.clone();
    let platforms: Api<NotificationPlatform> = scoped(&client, namespace.as_deref());
    // Only our own children are cached, not every Deployment of the cluster.
    let owned = watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={FIELD_MANAGER}"));
    let (reader, writer) = reflector::store();
    // Status writes change neither generation nor finalizers, so they trigger no reconcile.
    let platform_changes = watcher(platforms, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: config.instance.clone(),
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        backoff: Backoff::new(config.backoff_base, config.backoff_max),
        config,
        metrics,
    });
    Controller::for_stream(platform_changes, reader)
        .owns(
            scoped::<Deployment>(&client, namespace.as_deref()),
            owned.clone(),
        )
        .owns(
            scoped::<Service>(&client, namespace.as_deref()),
            owned.clone(),
        )
        .owns(
            scoped::<ConfigMap>(&client, namespace.as_deref()),
            owned.clone(),
        )
        .owns(scoped::<CronJob>(&client, namespace.as_deref()), owned)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(platform = %object, "reconciled"),
                // Already logged by the error policy, or the object is gone.
                Err(
                    controller::Error::ReconcilerFailed(..) | controller::Error::ObjectNotFound(_),
                ) => {}
                // Watch failures (say, missing RBAC) stall the controller: worth a warning.
                Err(error) => warn!(%error, "controller error"),
            }
        })
        .await;
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

fn error_policy(
    platform: Arc<NotificationPlatform>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    let delay = context.backoff.next(&platform);
    warn!(platform = %platform.name_any(), namespace = ?platform.namespace(), %error, retry_in = ?delay, "reconcile failed");
    context.metrics.failed(error.metric_label());
    let note = error.to_string();
    tokio::spawn(async move {
        let event = events::event(EventType::Warning, "ReconcileFailed", note);
        context.publish(&platform, &event).await;
    });
    Action::requeue(delay)
}

async fn reconcile(
    platform: Arc<NotificationPlatform>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let _timer = context.metrics.start();
    let namespace = platform
        .namespace()
        .ok_or_else(|| Error::NoNamespace(platform.name_any()))?;
    let platforms: Api<NotificationPlatform> = Api::namespaced(context.client.clone(), &namespace);

    if platform.meta().deletion_timestamp.is_some() {
        return cleanup(&platform, &platforms, &context).await;
    }
    sync_finalizer(&platform, &platforms).await?;
    if platform.spec.paused {
        let status = status::paused(
            platform.status.as_ref(),
            platform.metadata.generation,
            &now(),
        );
        write_status(&platforms, &platform, &status).await?;
        context.metrics.reconciled("paused");
        return Ok(Action::await_change());
    }

    let mut children = Children {
        client: context.client.clone(),
        namespace: namespace.clone(),
        pruned: vec![],
    };
    let (api, processor) = children.apply_workloads(&platform).await?;
    let schedules = children.apply_schedules(&platform).await?;
    let missing_secrets = missing_secrets(&context.client, &namespace, &platform).await;
    let (kafka, report) = converge_topics(&platform, &context, &namespace).await;

    let observed = Observed {
        generation: platform.metadata.generation,
        api,
        processor,
        missing_secrets,
        kafka,
        schedules,
    };
    let status = status::compute(platform.status.as_ref(), observed, &now());
    let mut to_publish = events::transitions(platform.status.as_ref(), &status);
    if let Some(report) = &report {
        to_publish.extend(events::topic_changes(report));
    }
    to_publish.extend(children.pruned.iter().map(|child| {
        events::event(
            EventType::Normal,
            "Pruned",
            format!("deleted {child}: no longer in the spec"),
        )
    }));
    write_status(&platforms, &platform, &status).await?;
    for event in &to_publish {
        context.publish(&platform, event).await;
    }

    let is = |type_: &str| status::condition(&status, type_).is_some_and(|c| c.status == "True");
    if is(status::DEGRADED) {
        context.metrics.reconciled("degraded");
        Ok(Action::requeue(context.backoff.next(&platform)))
    } else {
        context.backoff.reset(&platform);
        context.metrics.reconciled(if is(status::READY) {
            "ready"
        } else {
            "progressing"
        });
        Ok(Action::requeue(context.config.resync))
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// Adds the finalizer when topics must be deleted with the resource, removes it otherwise.
async fn sync_finalizer(
    platform: &NotificationPlatform,
    platforms: &Api<NotificationPlatform>,
) -> Result<(), Error> {
    let has = platform.finalizers().iter().any(|f| f == FINALIZER);
    let wants = platform.spec.kafka.deletion_policy == DeletionPolicy::Delete;
    if has == wants {
        return Ok(());
    }
    let mut finalizers: Vec<String> = platform
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if wants {
        finalizers.push(FINALIZER.into());
    }
    set_finalizers(platform, platforms, finalizers).await
}

async fn set_finalizers(
    platform: &NotificationPlatform,
    platforms: &Api<NotificationPlatform>,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    // The resourceVersion makes the API server refuse the patch if someone else changed the
    // list meanwhile, instead of silently overwriting their finalizer.
    let patch = json!({"metadata": {"resourceVersion": platform.resource_version(), "finalizers": finalizers}});
    platforms
        .patch(
            &platform.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

async fn cleanup(
    platform: &NotificationPlatform,
    platforms: &Api<NotificationPlatform>,
    context: &Context,
) -> Result<Action, Error> {
    if !platform.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if platform.spec.kafka.deletion_policy == DeletionPolicy::Delete {
        let namespace = platform.namespace().unwrap_or_default();
        let names: Vec<&str> = platform
            .spec
            .kafka
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let (event_type, reason, note) = match read_brokers(
            &context.client,
            &namespace,
            &platform.spec.kafka.brokers_secret_ref,
        )
        .await
        {
            Ok(brokers) => {
                TopicAdmin::new(&brokers, context.config.kafka_timeout)?
                    .delete(&names)
                    .await?;
                info!(platform = %platform.name_any(), %namespace, topics = ?names, "deleted Kafka topics");
                let note = format!("deleted Kafka topics {}", names.join(", "));
                (EventType::Normal, "TopicsDeleted", note)
            }
            // Deleting the namespace deletes the Secret too, often first: waiting for it would
            // hold the resource, and so the namespace, forever. The topics are left, and said so.
            Err(("KafkaSecretNotFound", message)) => {
                warn!(platform = %platform.name_any(), %namespace, topics = ?names, %message,
                    "Kafka topics left in place: the brokers Secret is gone");
                let note = format!("Kafka topics {} left in place: {message}", names.join(", "));
                (EventType::Warning, "TopicsNotDeleted", note)
            }
            Err((_, message)) => return Err(Error::BrokersSecret(message)),
        };
        context
            .publish(platform, &events::event(event_type, reason, note))
            .await;
    }
    let rest = platform
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(platform, platforms, rest).await?;
    context.metrics.reconciled("deleted");
    Ok(Action::await_change())
}

/// The Kafka half of a reconcile; never fails the reconcile, so the other children are applied
/// and the problem shows in the status.
async fn converge_topics(
    platform: &NotificationPlatform,
    context: &Context,
    namespace: &str,
) -> (KafkaOutcome, Option<TopicsReport>) {
    let brokers = match read_brokers(
        &context.client,
        namespace,
        &platform.spec.kafka.brokers_secret_ref,
    )
    .await
    {
        Ok(brokers) => brokers,
        Err((reason, message)) => return (KafkaOutcome::Unavailable { reason, message }, None),
    };
    let result = match TopicAdmin::new(&brokers, context.config.kafka_timeout) {
        Ok(admin) => admin.ensure(&platform.spec.kafka.topics).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(report) => (KafkaOutcome::Checked(report.statuses.clone()), Some(report)),
        Err(error) => {
            let reason = match error {
                TopicsError::Unreachable { .. } => "KafkaUnreachable",
                _ => "KafkaAdminFailed",
            };
            (
                KafkaOutcome::Unavailable {
                    reason,
                    message: error.to_string(),
                },
                None,
            )
        }
    }
}

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
async fn read_brokers(
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
async fn missing_secrets(
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

async fn write_status(
    platforms: &Api<NotificationPlatform>,
    platform: &NotificationPlatform,
    status: &NotificationPlatformStatus,
) -> Result<(), Error> {
    if platform.status.as_ref() == Some(status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": NotificationPlatform::api_version(&()),
        "kind": NotificationPlatform::kind(&()),
        "status": status,
    });
    platforms
        .patch_status(
            &platform.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(())
}

/// Applies and prunes the children of one platform in its namespace.
struct Children {
    client: Client,
    namespace: String,
    /// `Kind name` of every child deleted by pruning, for Events.
    pruned: Vec<String>,
}

impl Children {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Deployments, Services, ConfigMaps and monitoring objects; returns the replica counts.
    async fn apply_workloads(
        &mut self,
        platform: &NotificationPlatform,
    ) -> Result<(ComponentStatus, ComponentStatus), Error> {
        let config_maps = self.api::<ConfigMap>();
        let mut keep_config_maps =
            vec![apply(&config_maps, &config_map(platform)).await?.name_any()];
        if platform.spec.observability.grafana_dashboards {
            keep_config_maps.push(
                apply(&config_maps, &dashboards_config_map(platform))
                    .await?
                    .name_any(),
            );
        }
        self.prune(&config_maps, platform, &keep_config_maps, "ConfigMap")
            .await?;

        let deployments = self.api::<Deployment>();
        let api = apply(&deployments, &api_deployment(platform)).await?;
        let processor = apply(&deployments, &processor_deployment(platform)).await?;
        let kept = [api.name_any(), processor.name_any()];
        self.prune(&deployments, platform, &kept, "Deployment")
            .await?;

        let services = self.api::<Service>();
        let kept = [
            apply(&services, &api_service(platform)).await?.name_any(),
            apply(&services, &processor_service(platform))
                .await?
                .name_any(),
        ];
        self.prune(&services, platform, &kept, "Service").await?;

        self.apply_monitoring(platform).await?;
        Ok((component_status(&api), component_status(&processor)))
    }

    /// ServiceMonitor and PrometheusRule, only where the cluster has the Prometheus Operator's
    /// CRDs; without them the scrape annotations still let a plain Prometheus find the pods.
    async fn apply_monitoring(&mut self, platform: &NotificationPlatform) -> Result<(), Error> {
        let served = match self
            .client
            .list_api_group_resources(MONITORING_GROUP_VERSION)
            .await
        {
            Ok(list) => list
                .resources
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>(),
            // The API server answers a group it does not serve with a plain-text 404.
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let observability = &platform.spec.observability;
        for (resource, wanted, object) in [
            (
                service_monitor_resource(),
                observability.service_monitor,
                service_monitor(platform),
            ),
            (
                prometheus_rule_resource(),
                observability.prometheus_rules,
                prometheus_rule(platform),
            ),
        ] {
            if !served.contains(&resource.plural) {
                continue;
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
            let keep = if wanted {
                vec![apply(&api, &object).await?.name_any()]
            } else {
                vec![]
            };
            let kind = resource.kind.clone();
            self.prune(&api, platform, &keep, &kind).await?;
        }
        Ok(())
    }

    /// One CronJob per schedule. A CronJob the API server rejects (say, an unknown time zone)
    /// is reported per schedule instead of failing the whole reconcile.
    async fn apply_schedules(
        &mut self,
        platform: &NotificationPlatform,
    ) -> Result<Vec<ScheduleStatus>, Error> {
        let cron_jobs = self.api::<CronJob>();
        let mut statuses = vec![];
        for schedule in &platform.spec.schedules {
            let name = cron_job_name(platform, schedule);
            let (state, message) = match apply(&cron_jobs, &cron_job(platform, schedule)).await {
                Ok(_) => (ChildState::Ready, None),
                Err(kube::Error::Api(status)) if status.is_invalid() || status.code == 400 => {
                    (ChildState::Failed, Some(status.message.clone()))
                }
                Err(error) => return Err(error.into()),
            };
            statuses.push(ScheduleStatus {
                name: schedule.name.clone(),
                cron_job: name,
                state,
                message,
            });
        }
        let keep: Vec<String> = statuses.iter().map(|s| s.cron_job.clone()).collect();
        self.prune(&cron_jobs, platform, &keep, "CronJob").await?;
        Ok(statuses)
    }

    /// Deletes the children of `platform` of one kind that are not in `keep`.
    async fn prune<K>(
        &mut self,
        api: &Api<K>,
        platform: &NotificationPlatform,
        keep: &[String],
        kind: &str,
    ) -> Result<(), Error>
    where
        K: Resource + Clone + DeserializeOwned + Debug,
    {
        let owner = platform.uid().unwrap_or_default();
        let existing = api
            .list_metadata(&ListParams::default().labels(&owned_selector(platform)))
            .await?;
        for object in existing.items {
            let name = object.name_any();
            let owned = object.owner_references().iter().any(|o| o.uid == owner);
            if !owned || keep.contains(&name) {
                continue;
            }
            info!(platform = %platform.name_any(), child = %name, %kind, "pruning child that is no longer desired");
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => self.pruned.push(format!("{kind} {name}")),
                Err(kube::Error::Api(status)) if status.is_not_found() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

fn component_status(deployment: &Deployment) -> ComponentStatus {
    ComponentStatus {
        replicas: deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1),
        ready_replicas: deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
    }
}

async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;

    #[test]
    fn backoff_doubles_per_object_up_to_the_cap_and_resets() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let (a, mut b) = (platform(), platform());
        b.metadata.uid = Some("another".into());
        let delays: Vec<u64> = (0..5).map(|_| backoff.next(&a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        assert_eq!(
            backoff.next(&b).as_secs(),
            1,
            "objects back off independently"
        );
        backoff.reset(&a);
        assert_eq!(backoff.next(&a).as_secs(), 1);
    }

    #[test]
    fn component_status_reads_desired_and_ready_replicas() {
        let mut deployment = api_deployment(&platform());
        assert_eq!(
            component_status(&deployment),
            ComponentStatus {
                replicas: 2,
                ready_replicas: 0
            }
        );
        deployment.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
            ready_replicas: Some(2),
            ..Default::default()
        });
        assert_eq!(component_status(&deployment).ready_replicas, 2);
    }
}
