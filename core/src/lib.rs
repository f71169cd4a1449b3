//! What the Herald services (api-server, processor, operator) share.

pub mod config;
pub mod db;
pub mod event;
pub mod fanout;
pub mod notification;
pub mod telemetry;
