//! What every Herald container shares: image, connection settings from Secrets, configuration
//! from the platform ConfigMap, OpenTelemetry resource attributes and a restricted security
//! context.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, EnvFromSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PodSecurityContext, PodSpec, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume,
};
use kube::ResourceExt;

use super::config_map_name;
use super::configmap::config_data;
use crate::crd::{NotificationPlatform, SecretKeyRef};

/// Pod template annotation that changes whenever the ConfigMap's data does, so that pods
/// restart to pick up new settings (environment variables are read once at start).
pub const CONFIG_HASH_ANNOTATION: &str = "herald.dev/config-hash";

pub(super) fn container(
    platform: &NotificationPlatform,
    name: &str,
    service_name: &str,
    command: Vec<String>,
) -> Container {
    let spec = &platform.spec;
    Container {
        name: name.to_owned(),
        image: Some(format!("{}:{}", spec.image.repository, spec.image.tag)),
        image_pull_policy: spec.image.pull_policy.map(|p| p.as_str().to_owned()),
        command: Some(command),
        env: Some(env(platform, service_name)),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: config_map_name(platform),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn env(platform: &NotificationPlatform, service_name: &str) -> Vec<EnvVar> {
    let spec = &platform.spec;
    vec![
        field_env("K8S_POD_NAME", "metadata.name"),
        field_env("K8S_NAMESPACE_NAME", "metadata.namespace"),
        secret_env("DATABASE_URL", &spec.database),
        secret_env("REDIS_URL", &spec.redis),
        secret_env("KAFKA_BROKERS", &spec.kafka.brokers_secret_ref),
        value_env("OTEL_SERVICE_NAME", service_name),
        // `$(VAR)` expands variables defined earlier in this list (the downward API ones).
        value_env(
            "OTEL_RESOURCE_ATTRIBUTES",
            &format!(
                "k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.pod.name=$(K8S_POD_NAME),\
                 service.namespace=herald,herald.platform={}",
                platform.name_any()
            ),
        ),
    ]
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn secret_env(name: &str, secret: &SecretKeyRef) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

pub(super) fn value_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

pub(super) fn pod_spec(
    containers: Vec<Container>,
    volumes: Vec<Volume>,
    restart_policy: Option<&str>,
) -> PodSpec {
    PodSpec {
        containers,
        volumes: (!volumes.is_empty()).then_some(volumes),
        restart_policy: restart_policy.map(str::to_owned),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        ..PodSpec::default()
    }
}

/// Pod annotations: Prometheus scrape hints (always, also without the Prometheus Operator) and
/// the configuration hash.
pub(super) fn pod_annotations(
    platform: &NotificationPlatform,
    metrics_port: Option<i32>,
) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([(
        CONFIG_HASH_ANNOTATION.to_owned(),
        config_hash(&config_data(platform)),
    )]);
    if let Some(port) = metrics_port {
        annotations.extend(scrape_annotations(port));
    }
    annotations
}

pub(super) fn scrape_annotations(port: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), port.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ])
}

/// FNV-1a over the sorted entries: stable across operator builds, unlike `DefaultHasher`, so an
/// operator upgrade does not restart every pod.
fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in data {
        for byte in key.bytes().chain([0]).chain(value.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;

    fn env_of(container: &Container, name: &str) -> EnvVar {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no env {name}"))
            .clone()
    }

    #[test]
    fn credentials_come_from_secret_refs() {
        let c = container(&platform(), "x", "svc", vec!["x".into()]);
        let db = env_of(&c, "DATABASE_URL")
            .value_from
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!((db.name.as_str(), db.key.as_str()), ("herald-db", "url"));
        let kafka = env_of(&c, "KAFKA_BROKERS")
            .value_from
            .unwrap()
            .secret_key_ref
            .unwrap();
        assert_eq!(
            (kafka.name.as_str(), kafka.key.as_str()),
            ("herald-kafka", "brokers")
        );
        assert!(env_of(&c, "REDIS_URL").value.is_none());
    }

    #[test]
    fn resource_attributes_name_namespace_pod_and_platform() {
        let c = container(&platform(), "x", "herald-api-server", vec![]);
        let attributes = env_of(&c, "OTEL_RESOURCE_ATTRIBUTES").value.unwrap();
        assert!(attributes.contains("k8s.namespace.name=$(K8S_NAMESPACE_NAME)"));
        assert!(attributes.contains("k8s.pod.name=$(K8S_POD_NAME)"));
        assert!(attributes.contains("herald.platform=demo"));
        // Dependent variables must be defined before they are referenced.
        let names: Vec<_> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        let position = |n| names.iter().position(|x| *x == n).unwrap();
        assert!(position("K8S_POD_NAME") < position("OTEL_RESOURCE_ATTRIBUTES"));
        assert_eq!(
            env_of(&c, "OTEL_SERVICE_NAME").value.unwrap(),
            "herald-api-server"
        );
    }

    #[test]
    fn config_hash_follows_config_changes() {
        let before = pod_annotations(&platform(), None)[CONFIG_HASH_ANNOTATION].clone();
        let mut changed = platform();
        changed.spec.observability.log_level = "debug".into();
        let after = pod_annotations(&changed, None)[CONFIG_HASH_ANNOTATION].clone();
        assert_ne!(before, after);
        assert_eq!(
            before,
            pod_annotations(&platform(), None)[CONFIG_HASH_ANNOTATION]
        );
    }
}
