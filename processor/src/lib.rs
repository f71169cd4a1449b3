//! Herald's processor: one binary with the faces Kubernetes needs. `consume` is the
//! Deployment (Kafka consumer), `job` one CronJob run, `schedule` the jobs on cron schedules
//! without Kubernetes, and `dlq` the operator's tool for the dead-letter topic.
//!
//! - [`cli`]: the command line and the exit codes; `main.rs` only parses and calls it.
//! - [`consume`]: the consumer; [`dead_letter`]: the dead-letter topic and `processor dlq`;
//!   [`job`]: `processor job` and `processor schedule`.
//! - [`connections`]: the database, Redis and Kafka settings each command requires;
//!   [`kafka`]: Kafka plumbing; [`metrics`]: the consumer's `/metrics`.
//! - [`failure`]: why the process failed, which decides its exit code.

pub mod cli;
pub mod connections;
pub mod consume;
pub mod dead_letter;
pub mod failure;
pub mod job;
pub mod kafka;
pub mod metrics;
