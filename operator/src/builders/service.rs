//! Services: the api-server's (HTTP, type and port from the spec) and one headless Service per
//! component for its `/metrics` port, which a ServiceMonitor or annotation-based discovery
//! finds. The api-server's metrics need no API key, so they get a Service of their own rather
//! than a port on one that may be a LoadBalancer; nothing connects to a metrics Service but
//! Prometheus, so it takes no cluster IP.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::scrape_annotations;
use super::{Component, METRICS_PORT, child_meta, selector_labels};
use crate::crd::NotificationPlatform;

pub fn api_service(platform: &NotificationPlatform) -> Service {
    let spec = &platform.spec.api.service;
    let mut service = service(
        platform,
        Component::Api,
        Component::Api.object_name(platform),
        spec.type_.as_str(),
        service_port("http", spec.port, "http"),
    );
    if let Some(service) = service.spec.as_mut() {
        // Always set, so that going back to `None` is applied too.
        service.session_affinity = Some(spec.session_affinity.as_str().to_owned());
    }
    service
}

pub fn api_metrics_service(platform: &NotificationPlatform) -> Service {
    metrics_service(platform, Component::Api, api_metrics_service_name(platform))
}

/// Also the `service` label of the api-server's scraped series.
pub(super) fn api_metrics_service_name(platform: &NotificationPlatform) -> String {
    format!("{}-metrics", Component::Api.object_name(platform))
}

pub fn processor_service(platform: &NotificationPlatform) -> Service {
    metrics_service(
        platform,
        Component::Processor,
        Component::Processor.object_name(platform),
    )
}

fn metrics_service(platform: &NotificationPlatform, component: Component, name: String) -> Service {
    let mut service = service(
        platform,
        component,
        name,
        "ClusterIP",
        service_port("metrics", METRICS_PORT, "metrics"),
    );
    service.metadata.annotations = Some(scrape_annotations(METRICS_PORT));
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some("None".into());
    }
    service
}

fn service(
    platform: &NotificationPlatform,
    component: Component,
    name: String,
    type_: &str,
    port: ServicePort,
) -> Service {
    Service {
        metadata: child_meta(platform, name, component.as_str()),
        spec: Some(ServiceSpec {
            type_: Some(type_.to_owned()),
            selector: Some(selector_labels(platform, component.as_str())),
            ports: Some(vec![port]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn service_port(name: &str, port: i32, target: &str) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::String(target.to_owned())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::test_fixtures::platform;
    use crate::builders::{api_deployment, processor_deployment};
    use crate::crd::{ServiceType, SessionAffinity};

    #[test]
    fn api_service_uses_spec_type_and_port_and_targets_http() {
        let mut p = platform();
        p.spec.api.service.type_ = ServiceType::LoadBalancer;
        p.spec.api.service.port = 8080;
        let spec = api_service(&p).spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.port, 8080);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));

        p.spec.api.service.session_affinity = SessionAffinity::ClientIp;
        let spec = api_service(&p).spec.unwrap();
        assert_eq!(spec.session_affinity.as_deref(), Some("ClientIP"));
    }

    #[test]
    fn services_select_their_deployments_pods() {
        for (service, deployment) in [
            (api_service(&platform()), api_deployment(&platform())),
            (
                api_metrics_service(&platform()),
                api_deployment(&platform()),
            ),
            (
                processor_service(&platform()),
                processor_deployment(&platform()),
            ),
        ] {
            let selector = service.spec.unwrap().selector.unwrap();
            let pod_labels = deployment
                .spec
                .unwrap()
                .template
                .metadata
                .unwrap()
                .labels
                .unwrap();
            assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
        }
    }

    #[test]
    fn metrics_services_expose_the_metrics_port_headless() {
        for (s, name) in [
            (processor_service(&platform()), "demo-processor"),
            (api_metrics_service(&platform()), "demo-api-metrics"),
        ] {
            assert_eq!(s.metadata.name.as_deref(), Some(name));
            assert_eq!(
                s.metadata.annotations.unwrap()["prometheus.io/port"],
                "9090"
            );
            let spec = s.spec.unwrap();
            let port = &spec.ports.unwrap()[0];
            assert_eq!((port.name.as_deref(), port.port), (Some("metrics"), 9090));
            assert_eq!(spec.cluster_ip.as_deref(), Some("None"), "headless");
        }
    }

    #[test]
    fn api_service_neither_exposes_nor_advertises_metrics() {
        let mut p = platform();
        p.spec.api.service.type_ = ServiceType::LoadBalancer;
        let s = api_service(&p);
        assert_eq!(s.metadata.annotations, None);
        let ports = s.spec.unwrap().ports.unwrap();
        assert!(ports.iter().all(|p| p.name.as_deref() == Some("http")));
    }
}
