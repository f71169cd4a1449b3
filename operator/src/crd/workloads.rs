//! The two workloads: the image they run, the api-server with its Service, and the processor.

use k8s_openapi::api::core::v1::ResourceRequirements;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    #[serde(default = "default_repository")]
    #[schemars(length(min = 1, max = 255))]
    pub repository: String,
    #[serde(default = "default_tag")]
    #[schemars(length(min = 1, max = 128))]
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            repository: default_repository(),
            tag: default_tag(),
            pull_policy: None,
        }
    }
}

fn default_repository() -> String {
    "ghcr.io/herald/herald".into()
}

fn default_tag() -> String {
    env!("CARGO_PKG_VERSION").into()
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    #[serde(default = "default_api_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    /// Defaults to modest requests and a memory limit when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default)]
    pub service: ServiceSpec,
}

impl Default for ApiSpec {
    fn default() -> Self {
        Self {
            replicas: default_api_replicas(),
            resources: None,
            service: ServiceSpec::default(),
        }
    }
}

fn default_api_replicas() -> i32 {
    2
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    #[serde(default = "default_service_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// `ClientIP` keeps each client on one api-server replica. With more than one replica,
    /// Socket.IO clients on long-polling (socket.io-client's default) need that, unless the
    /// ingress in front keeps them on one replica itself (ingress-nginx talks to the pods
    /// directly: use its cookie affinity). WebSocket, SSE and REST clients do not need it.
    #[serde(default, rename = "sessionAffinity")]
    pub session_affinity: SessionAffinity,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            type_: ServiceType::default(),
            port: default_service_port(),
            session_affinity: SessionAffinity::default(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum SessionAffinity {
    #[default]
    None,
    #[serde(rename = "ClientIP")]
    ClientIp,
}

impl SessionAffinity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::ClientIp => "ClientIP",
        }
    }
}

fn default_service_port() -> i32 {
    80
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorSpec {
    #[serde(default = "default_processor_replicas")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Kafka consumer group of the processor.
    #[serde(default = "default_consumer_group")]
    #[schemars(length(min = 1, max = 249))]
    pub consumer_group: String,
}

impl Default for ProcessorSpec {
    fn default() -> Self {
        Self {
            replicas: default_processor_replicas(),
            resources: None,
            consumer_group: default_consumer_group(),
        }
    }
}

fn default_processor_replicas() -> i32 {
    1
}

fn default_consumer_group() -> String {
    "herald-processor".into()
}
