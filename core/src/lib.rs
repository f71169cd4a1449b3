//! What the Herald services (api-server, processor, operator) share.

pub mod telemetry;
