//! The `NotificationPlatform` custom resource (herald.dev/v1alpha1).
//!
//! Everything the API server can check at admission is declared here (OpenAPI bounds, list
//! keys, CEL rules); what only the reconciler can check is reported in the status.
//!
//! - `platform`: the resource, its top-level rules and [`crd_yaml`]; `workloads`, `kafka`,
//!   `auth`, `schedules`, `observability`: the parts of the spec; `secret_ref`: references to the
//!   Secrets with credentials; `status`: what the operator reports.

mod auth;
mod kafka;
mod observability;
mod platform;
mod schedules;
mod secret_ref;
mod status;
mod workloads;

pub use auth::{AuthSpec, JwtSpec};
pub use kafka::{DeletionPolicy, KafkaSpec, TopicSpec};
pub use observability::{LogFormat, ObservabilitySpec};
pub use platform::{NotificationPlatform, NotificationPlatformSpec, crd_yaml};
pub use schedules::{ConcurrencyPolicy, JobKind, Schedule};
pub use secret_ref::SecretKeyRef;
pub use status::{
    ChildState, ComponentStatus, NotificationPlatformStatus, ScheduleStatus, TopicStatus,
};
pub use workloads::{
    ApiSpec, ImageSpec, ProcessorSpec, PullPolicy, ServiceSpec, ServiceType, SessionAffinity,
};
