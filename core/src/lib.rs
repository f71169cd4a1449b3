//! What the api-server and the processor share: the domain (notifications, events), the
//! database, the fan-out, the batch jobs and the processing step. What every binary runs on
//! (telemetry, HTTP serving, the shutdown signal) is `herald-runtime`.

pub mod config;
pub mod db;
pub mod event;
pub mod fanout;
pub mod jobs;
pub mod notification;
pub mod processing;
mod string_enum;
