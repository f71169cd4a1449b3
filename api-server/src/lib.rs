//! Herald's client-facing service: the REST API, Server-Sent Events, Socket.IO v4 and plain
//! WebSocket streams, and the relay that publishes what the API stored.
//!
//! `server` is the composition root: it connects the stores, builds each part's handles and
//! passes every module only what it uses. The binary (`main.rs`) parses the command line and
//! calls [`server::serve`] or [`server::migrate`].

pub mod config;
pub mod server;

mod auth;
mod cache;
mod connection;
mod error;
mod metrics;
mod relay;
mod routes;
mod stream;
mod writer;
