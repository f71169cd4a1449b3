//! The controller: watches NotificationPlatforms and the objects they own, applies the desired
//! children with server-side apply, prunes what is no longer desired, converges Kafka topics
//! and writes the status when it changes.
//!
//! - `run`: the watches, the error policy; `backoff`: the retry delays it uses.
//! - `reconcile`: one reconcile, step by step, and the status write.
//! - `children`: server-side apply and pruning of the owned objects.
//! - `secrets`: the referenced Secrets; `topics`: the Kafka topics; `finalizer`: the finalizer
//!   and the cleanup it guards.
//! - `context`: what every reconcile shares; `error`: why a reconcile failed, with
//!   `kube_message` for the API server's part of it.

mod backoff;
mod children;
mod context;
mod error;
mod finalizer;
mod kube_message;
mod reconcile;
mod run;
mod secrets;
mod topics;

pub use context::Config;
pub use finalizer::FINALIZER;
pub use run::run;
