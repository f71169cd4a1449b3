//! The finalizer that holds a platform until its Kafka topics are deleted, and that cleanup.

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::context::Context;
use super::error::Error;
use super::topics;
use crate::crd::{DeletionPolicy, NotificationPlatform};

/// Present while topics must be deleted before the resource may go (deletionPolicy Delete).
pub const FINALIZER: &str = "herald.dev/kafka-topics";

/// Adds the finalizer when topics must be deleted with the resource, removes it otherwise.
pub(super) async fn sync_finalizer(
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
    let name = platform.name_any();
    set_finalizers(platform, platforms, finalizers)
        .await
        .map_err(|source| {
            if wants {
                Error::AddFinalizer { name, source }
            } else {
                Error::RemoveFinalizer { name, source }
            }
        })
}

async fn set_finalizers(
    platform: &NotificationPlatform,
    platforms: &Api<NotificationPlatform>,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
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

/// The reconcile of a platform being deleted: deletes its topics if it has to, then lets it go.
pub(super) async fn cleanup(
    platform: &NotificationPlatform,
    platforms: &Api<NotificationPlatform>,
    context: &Context,
) -> Result<Action, Error> {
    if !platform.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    if platform.spec.kafka.deletion_policy == DeletionPolicy::Delete {
        let event = topics::delete(platform, context).await?;
        context.publish(platform, &event).await;
    }
    let rest = platform
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(platform, platforms, rest)
        .await
        .map_err(|source| Error::RemoveFinalizer {
            name: platform.name_any(),
            source,
        })?;
    context.metrics.reconciled("deleted");
    Ok(Action::await_change())
}
