//! The operator against the real kube-apiserver and Kafka of the test environment
//! (`scripts/testenv up kube kafka`), with the controller running in-process; one test binary,
//! with a module per theme.

#[path = "../common/mod.rs"]
mod common;

mod admission;
mod auth;
mod children;
mod deletion;
mod kafka;
mod secrets;
mod updates;
