//! Services: the api-server's (HTTP, type and port from the spec) and the processor's metrics
//! endpoint (so that a ServiceMonitor can find it). Nothing connects to the processor through
//! its Service, so it is headless and takes no cluster IP.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::scrape_annotations;
use super::{API_PORT, Component, PROCESSOR_METRICS_PORT, child_meta, selector_labels};
use crate::crd::NotificationPlatform;

pub fn api_service(platform: &NotificationPlatform) -> Service {
    let spec = &platform.spec.api.service;
    let mut service = service(
        platform,
        Component::Api,
        spec.type_.as_str(),
        service_port("http", spec.port, "http"),
        API_PORT,
    );
    if let Some(service) = service.spec.as_mut() {
        // Always set, so that going back to `None` is applied too.
        service.session_affinity = Some(spec.session_affinity.as_str().to_owned());
    }
    service
}

pub fn processor_service(platform: &NotificationPlatform) -> Service {
    let mut service = service(
        platform,
        Component::Processor,
        "ClusterIP",
        service_port("metrics", PROCESSOR_METRICS_PORT, "metrics"),
        PROCESSOR_METRICS_PORT,
    );
    if let Some(spec) = service.spec.as_mut() {
        spec.cluster_ip = Some("None".into());
    }
    service
}

fn service(
    platform: &NotificationPlatform,
    component: Component,
    type_: &str,
    port: ServicePort,
    metrics_port: i32,
) -> Service {
    let mut metadata = child_meta(
        platform,
        component.object_name(platform),
        component.as_str(),
    );
    metadata.annotations = Some(scrape_annotations(metrics_port));
    Service {
        metadata,
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
    fn processor_service_exposes_metrics() {
        let s = processor_service(&platform());
        assert_eq!(s.metadata.name.as_deref(), Some("demo-processor"));
        assert_eq!(
            s.metadata.annotations.unwrap()["prometheus.io/port"],
            "9090"
        );
        let spec = s.spec.unwrap();
        assert_eq!(spec.ports.unwrap()[0].port, 9090);
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"), "headless");
    }
}
