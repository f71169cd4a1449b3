//! Embedded mode (no Kafka): the processor's step and the batch jobs run in the server;
//! and CORS.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::Server;

/// Without Kafka the processor's step runs in process: a created notification is delivered.
#[tokio::test]
async fn embedded_mode_processes_notifications_in_process() {
    let server = Server::embedded(&[]).await;
    let created = server
        .create(json!({"message": "process me", "type": "info"}))
        .await;
    let url = server.url(&format!(
        "/api/notifications/{}",
        created["id"].as_str().unwrap()
    ));
    let delivered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let current: Value = server
                .client()
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if current["status"] != "pending" {
                return current;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("processed within 30 s");
    assert_eq!(delivered["status"], "delivered");
}

/// Browsers on another origin (the seed's React frontend on :3000) may call the API only when
/// their origin is configured (or `*` is); by default none may.
#[tokio::test]
async fn cors_lets_configured_origins_call_the_api() {
    let preflight = |server: &Server, origin: &'static str| {
        server
            .client()
            .request(reqwest::Method::OPTIONS, server.url("/api/notifications"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
    };
    let default = Server::embedded(&[]).await;
    let response = preflight(&default, "http://localhost:3000").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let open = Server::embedded(&[("CORS_ALLOWED_ORIGINS", "*")]).await;
    let response = preflight(&open, "http://localhost:3000").await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");

    let restricted = Server::embedded(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let allowed = preflight(&restricted, "https://app.example.com")
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let foreign = preflight(&restricted, "https://evil.example.net")
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

/// Without Kafka the server runs the batch jobs on their schedules too; runs are listed.
#[tokio::test]
async fn embedded_mode_runs_the_job_schedules_and_lists_their_runs() {
    let server = Server::embedded(&[
        ("SCHEDULE_USER_SYNC", "* * * * * *"),
        ("SCHEDULE_CLEANUP", "off"),
        ("SCHEDULE_REPORT", "off"),
    ])
    .await;
    server
        .create(json!({"message": "for dave", "type": "info", "userId": "dave"}))
        .await;
    let runs = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let page: Value = server.get_json("/api/jobs?job=user-sync").await;
            let finished = page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|run| run["status"] == "succeeded");
            if finished {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("a user-sync run within 30 s");
    assert_eq!(runs["runs"][0]["job"], "user-sync");
}

/// A schedule that is not a cron expression stops the start with a message naming it.
#[tokio::test]
async fn a_bad_schedule_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_api-server"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("KAFKA_BROKERS")
        .env("HERALD_DATA_DIR", dir.path())
        .env("PORT", "0")
        .env("SCHEDULE_REPORT", "every hour")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("every hour") && stderr.contains("report"),
        "{stderr}"
    );
}
