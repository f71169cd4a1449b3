//! The objects a platform owns: applied with server-side apply, and pruned when the spec no
//! longer asks for them.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::info;

use super::error::Error;
use crate::builders::{
    FIELD_MANAGER, MONITORING_GROUP_VERSION, api_deployment, api_metrics_service, api_service,
    config_map, cron_job, cron_job_name, dashboards_config_map, owned_selector,
    processor_deployment, processor_service, prometheus_rule, prometheus_rule_resource,
    service_monitor, service_monitor_resource,
};
use crate::crd::{ChildState, ComponentStatus, NotificationPlatform, ScheduleStatus};

/// Applies and prunes the children of one platform in its namespace.
pub(super) struct Children {
    client: Client,
    namespace: String,
    /// `Kind name` of every child deleted by pruning, for Events.
    pub(super) pruned: Vec<String>,
}

impl Children {
    pub(super) fn new(client: Client, namespace: String) -> Self {
        Self {
            client,
            namespace,
            pruned: vec![],
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Deployments, Services, ConfigMaps and monitoring objects; returns the replica counts.
    pub(super) async fn apply_workloads(
        &mut self,
        platform: &NotificationPlatform,
    ) -> Result<(ComponentStatus, ComponentStatus), Error> {
        let config_maps = self.api::<ConfigMap>();
        let mut keep_config_maps = vec![
            apply_child(&config_maps, "ConfigMap", &config_map(platform))
                .await?
                .name_any(),
        ];
        if platform.spec.observability.grafana_dashboards {
            keep_config_maps.push(
                apply_child(&config_maps, "ConfigMap", &dashboards_config_map(platform))
                    .await?
                    .name_any(),
            );
        }
        self.prune(&config_maps, platform, &keep_config_maps, "ConfigMap")
            .await?;

        let deployments = self.api::<Deployment>();
        let api = apply_child(&deployments, "Deployment", &api_deployment(platform)).await?;
        let processor =
            apply_child(&deployments, "Deployment", &processor_deployment(platform)).await?;
        let kept = [api.name_any(), processor.name_any()];
        self.prune(&deployments, platform, &kept, "Deployment")
            .await?;

        let services = self.api::<Service>();
        let kept = [
            apply_child(&services, "Service", &api_service(platform))
                .await?
                .name_any(),
            apply_child(&services, "Service", &api_metrics_service(platform))
                .await?
                .name_any(),
            apply_child(&services, "Service", &processor_service(platform))
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
            Err(source) => {
                return Err(Error::DiscoverApiGroup {
                    group_version: MONITORING_GROUP_VERSION,
                    source,
                });
            }
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
                vec![apply_child(&api, &resource.kind, &object).await?.name_any()]
            } else {
                vec![]
            };
            self.prune(&api, platform, &keep, &resource.kind).await?;
        }
        Ok(())
    }

    /// One CronJob per schedule. A CronJob the API server rejects (say, an unknown time zone)
    /// is reported per schedule instead of failing the whole reconcile.
    pub(super) async fn apply_schedules(
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
                Err(source) => {
                    return Err(Error::ApplyChild {
                        kind: "CronJob".into(),
                        name,
                        source,
                    });
                }
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
            .await
            .map_err(|source| Error::ListChildren {
                kind: kind.into(),
                source,
            })?;
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
                Err(source) => {
                    return Err(Error::PruneChild {
                        kind: kind.into(),
                        name,
                        source,
                    });
                }
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

/// Server-side apply as the operator's field manager, forced: fields someone else changed by
/// hand are taken back.
async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
}

/// [`apply`] for a child the platform cannot do without: a failure fails the reconcile.
async fn apply_child<K>(api: &Api<K>, kind: &str, object: &K) -> Result<K, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    apply(api, object)
        .await
        .map_err(|source| Error::ApplyChild {
            kind: kind.into(),
            name: object.name_any(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;

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
