//! What every Herald binary runs on, the operator included: logs and traces ([`telemetry`]),
//! HTTP serving with timeouts ([`http`]), the signal a process stops on ([`shutdown`]) and the
//! delays between retries ([`backoff`]).
//!
//! Nothing here links a database, Redis or Kafka client: the domain and its clients live in
//! `herald-core`.

pub mod backoff;
#[cfg(feature = "http")]
pub mod http;
pub mod shutdown;
#[cfg(feature = "telemetry")]
pub mod telemetry;
