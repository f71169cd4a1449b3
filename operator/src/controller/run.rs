//! The wiring: which watches trigger a reconcile, and what happens when one fails.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::runtime::controller::{self, Action};
use kube::runtime::events::{EventType, Recorder, Reporter};
use kube::runtime::{Controller, Predicate, WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tracing::{debug, warn};

use super::backoff::Backoff;
use super::context::{Config, Context};
use super::error::Error;
use super::reconcile::reconcile;
use crate::builders::{FIELD_MANAGER, LABEL_MANAGED_BY};
use crate::crd::NotificationPlatform;
use crate::events;
use crate::metrics::Metrics;

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
