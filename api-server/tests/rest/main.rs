//! The REST API of the real api-server binary on real PostgreSQL, Redis and Kafka, and the
//! same API in embedded mode.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod contract;
mod embedded;
mod kafka;
mod stores;

use common::{Backing, Server};

#[tokio::test]
async fn rest_api_on_postgres_and_redis() {
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[]).await;
    contract::serves_the_notification_api(&server).await;
    bad_input::refuses_bad_input(&server).await;
    contract::honours_idempotency_keys(&server).await;
}

#[tokio::test]
async fn rest_api_in_embedded_mode() {
    let server = Server::embedded(&[]).await;
    contract::serves_the_notification_api(&server).await;
    bad_input::refuses_bad_input(&server).await;
    contract::honours_idempotency_keys(&server).await;
}
