//! Deployments of the api-server and the processor.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PodTemplateSpec, Probe, ResourceRequirements,
    TCPSocketAction, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::auth::auth_wiring;
use super::pod::{container, pod_annotations, pod_spec, value_env};
use super::{API_PORT, Component, METRICS_PORT, child_meta, labels, selector_labels};
use crate::crd::NotificationPlatform;

pub fn api_deployment(platform: &NotificationPlatform) -> Deployment {
    let spec = &platform.spec.api;
    let mut main = container(
        platform,
        "api-server",
        Component::Api.service_name(),
        vec!["api-server".into()],
    );
    let auth = auth_wiring(platform);
    let env = main.env.get_or_insert_default();
    env.push(value_env("METRICS_PORT", &METRICS_PORT.to_string()));
    env.extend(auth.env);
    main.volume_mounts = (!auth.mounts.is_empty()).then_some(auth.mounts);
    main.ports = Some(vec![port("http", API_PORT), port("metrics", METRICS_PORT)]);
    // Ready: its database, Redis and Kafka answer; alive: the process serves HTTP.
    main.readiness_probe = Some(http_probe("/api/ready", "http"));
    main.liveness_probe = Some(Probe {
        failure_threshold: Some(6),
        ..http_probe("/api/health", "http")
    });
    main.resources = Some(spec.resources.clone().unwrap_or_else(default_resources));
    deployment(platform, Component::Api, spec.replicas, main, auth.volumes)
}

pub fn processor_deployment(platform: &NotificationPlatform) -> Deployment {
    let spec = &platform.spec.processor;
    let mut main = container(
        platform,
        "processor",
        Component::Processor.service_name(),
        vec!["processor".into(), "consume".into()],
    );
    main.ports = Some(vec![port("metrics", METRICS_PORT)]);
    // The consumer has no HTTP API; its metrics listener answering is the liveness signal.
    main.liveness_probe = Some(Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("metrics".into()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(10),
        failure_threshold: Some(6),
        ..Probe::default()
    });
    main.resources = Some(spec.resources.clone().unwrap_or_else(default_resources));
    deployment(platform, Component::Processor, spec.replicas, main, vec![])
}

fn deployment(
    platform: &NotificationPlatform,
    component: Component,
    replicas: i32,
    main: Container,
    volumes: Vec<Volume>,
) -> Deployment {
    let component_label = component.as_str();
    Deployment {
        metadata: child_meta(platform, component.object_name(platform), component_label),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector_labels(platform, component_label)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(platform, component_label)),
                    annotations: Some(pod_annotations(platform, Some(METRICS_PORT))),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(vec![main], volumes, None)),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn http_probe(path: &str, port: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        ..Probe::default()
    }
}

/// Requests sized for a small platform and a memory limit so a leak cannot starve the node.
pub(super) fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".into())),
            ("memory".to_owned(), Quantity("128Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("256Mi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;

    #[test]
    fn api_runs_api_server_with_spec_replicas_and_image() {
        let mut p = platform();
        p.spec.api.replicas = 3;
        p.spec.image.repository = "registry.example/herald".into();
        p.spec.image.tag = "1.2.3".into();
        let d = api_deployment(&p);
        assert_eq!(d.metadata.name.as_deref(), Some("demo-api"));
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        let pod = spec.template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("registry.example/herald:1.2.3"));
        assert_eq!(c.command.as_deref(), Some(&["api-server".to_owned()][..]));
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 3001);
        let ready = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(ready.path.as_deref(), Some("/api/ready"));
        let alive = c
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(alive.path.as_deref(), Some("/api/health"));
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    }

    #[test]
    fn api_serves_metrics_on_its_own_port_and_mounts_auth_secrets_read_only() {
        let pod = api_deployment(&platform())
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let c = &pod.containers[0];
        let ports: Vec<_> = c
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref().unwrap(), p.container_port))
            .collect();
        assert_eq!(ports, [("http", 3001), ("metrics", 9090)]);
        let env = |name: &str| {
            c.env
                .iter()
                .flatten()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        assert_eq!(env("METRICS_PORT").as_deref(), Some("9090"));
        assert_eq!(
            env("API_KEYS_FILE").as_deref(),
            Some("/etc/herald/auth/api-keys/keys")
        );
        let volumes = pod.volumes.unwrap();
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert_eq!(volumes.len(), mounts.len());
        for mount in mounts {
            assert!(volumes.iter().any(|v| v.name == mount.name));
            assert_eq!((mount.read_only, &mount.sub_path), (Some(true), &None));
        }
        let security = c.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
    }

    #[test]
    fn naming_another_secret_rolls_out_and_nothing_else_does() {
        let template = |p: &NotificationPlatform| api_deployment(p).spec.unwrap().template;
        let before = template(&platform());
        assert_eq!(template(&platform()), before, "stable across reconciles");
        let mut p = platform();
        p.spec.auth.api_keys_secret_ref = Some(crate::crd::SecretKeyRef {
            name: "demo-api-keys".into(),
            key: "rotated".into(),
        });
        // Same Secret, another key: a new pod template, so the Deployment rolls out. A new
        // value under the same key changes nothing here; the volume brings it to the pods.
        assert_ne!(template(&p), before);
    }

    #[test]
    fn processor_gets_no_auth_settings() {
        let pod = processor_deployment(&platform())
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(pod.volumes, None);
        let c = &pod.containers[0];
        assert_eq!(c.volume_mounts, None);
        let names: Vec<_> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        for auth in ["API_KEYS_FILE", "CORS_ALLOWED_ORIGINS", "METRICS_PORT"] {
            assert!(!names.contains(&auth), "{auth} in {names:?}");
        }
    }

    #[test]
    fn processor_runs_processor_consume() {
        let d = processor_deployment(&platform());
        assert_eq!(d.metadata.name.as_deref(), Some("demo-processor"));
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        let c = &spec.template.spec.unwrap().containers[0];
        assert_eq!(
            c.command.as_deref(),
            Some(&["processor".to_owned(), "consume".to_owned()][..])
        );
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 9090);
    }

    #[test]
    fn selector_matches_template_and_pods_are_scraped() {
        let spec = api_deployment(&platform()).spec.unwrap();
        let template = spec.template.metadata.unwrap();
        let pod_labels = template.labels.unwrap();
        for (key, value) in spec.selector.match_labels.unwrap() {
            assert_eq!(pod_labels.get(&key), Some(&value));
        }
        let annotations = template.annotations.unwrap();
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], "9090");
    }

    #[test]
    fn resources_default_or_come_from_spec() {
        let c = &processor_deployment(&platform())
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0];
        assert_eq!(c.resources, Some(default_resources()));

        let mut p = platform();
        let custom = ResourceRequirements {
            limits: Some(BTreeMap::from([("cpu".to_owned(), Quantity("2".into()))])),
            ..ResourceRequirements::default()
        };
        p.spec.processor.resources = Some(custom.clone());
        let c = &processor_deployment(&p)
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0];
        assert_eq!(c.resources, Some(custom));
    }
}
