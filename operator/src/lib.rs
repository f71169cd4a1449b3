//! The Herald operator: reconciles `NotificationPlatform` resources into the running platform.
//!
//! - [`crd`]: the resource (herald.dev/v1alpha1) and its admission rules; `crdgen` writes it to
//!   `crds/`.
//! - [`builders`]: pure functions from a platform to its children (Deployments, Services,
//!   ConfigMaps, CronJobs, dashboards, Prometheus Operator objects).
//! - [`controller`]: server-side apply, pruning, finalizer, Kafka topics, status, Events.
//! - [`kafka_topics`]: topics through Kafka's admin API; [`status`]: conditions;
//!   [`events`]: which Events a reconcile publishes.
//! - [`leader`], [`http`], [`metrics`]: running several replicas, probes and metrics.

pub mod builders;
pub mod controller;
pub mod crd;
pub mod events;
pub mod http;
pub mod kafka_topics;
pub mod leader;
pub mod metrics;
pub mod status;
