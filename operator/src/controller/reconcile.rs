//! One reconcile of a platform, step by step: finalizer, the generated API keys Secret,
//! children, referenced Secrets, Kafka topics, then the status and the Events that say what
//! changed.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::api_keys::ensure_api_keys_secret;
use super::children::Children;
use super::context::Context;
use super::error::Error;
use super::finalizer::{cleanup, sync_finalizer};
use super::secrets::missing_secrets;
use super::topics;
use crate::builders::{API_KEYS_KEY, FIELD_MANAGER, api_keys_ref, api_keys_secret_name};
use crate::crd::{NotificationPlatform, NotificationPlatformStatus};
use crate::events;
use crate::status::{self, Observed};

pub(super) async fn reconcile(
    platform: Arc<NotificationPlatform>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    let _timer = context.metrics.start();
    let namespace = platform.namespace().ok_or_else(|| Error::NoNamespace {
        name: platform.name_any(),
    })?;
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

    // Before the Deployment that mounts it, so that the first pods start with it.
    if ensure_api_keys_secret(&context.client, &namespace, &platform).await? {
        let name = api_keys_secret_name(&platform);
        let event = events::event(
            EventType::Normal,
            "ApiKeysGenerated",
            format!(
                "created Secret {name} with an admin API key; read it with: kubectl get secret \
                 {name} -n {namespace} -o jsonpath='{{.data.{API_KEYS_KEY}}}' | base64 -d"
            ),
        );
        context.publish(&platform, &event).await;
    }
    let mut children = Children::new(context.client.clone(), namespace.clone());
    let (api, processor) = children.apply_workloads(&platform).await?;
    let schedules = children.apply_schedules(&platform).await?;
    let missing_secrets = missing_secrets(&context.client, &namespace, &platform).await;
    let (kafka, report) = topics::converge(&platform, &context, &namespace).await;

    let observed = Observed {
        generation: platform.metadata.generation,
        api,
        processor,
        missing_secrets,
        kafka,
        schedules,
        api_keys: api_keys_ref(&platform),
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
        .await
        .map_err(|source| Error::PatchStatus {
            name: platform.name_any(),
            source,
        })?;
    Ok(())
}
