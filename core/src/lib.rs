//! What the Herald services (api-server, processor, operator) share.

pub mod config;
pub mod db;
pub mod event;
pub mod fanout;
pub mod http;
pub mod jobs;
pub mod notification;
pub mod processing;
pub mod shutdown;
pub mod telemetry;
