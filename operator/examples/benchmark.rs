//! Benchmark of the operator binary on the test environment's API server and Kafka:
//! time for N NotificationPlatforms to become Ready, reconciles while idle afterwards, and the
//! operator's resident memory.
//!
//! No kubelet runs in the test environment, so this program stands in for it and reports every
//! Deployment's replicas as ready as soon as the operator has created it.
//!
//! ```sh
//! cargo build --release -p operator --bins --examples
//! target/release/examples/benchmark [COUNT=50] [IDLE_SECONDS=60]
//! ```
//! `OPERATOR_BIN` overrides the operator binary (default: next to this program's directory).

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use operator::crd::NotificationPlatform;
use serde_json::json;
use test_support::{kube_namespace, settings, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let idle = Duration::from_secs(args.next().map_or(Ok(60), |a| a.parse())?);
    let operator_bin = match std::env::var_os("OPERATOR_BIN") {
        Some(path) => path.into(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|profile| profile.join("operator"))
            .ok_or_else(|| {
                anyhow::anyhow!("cannot locate the operator binary; set OPERATOR_BIN")
            })?,
    };

    let ns = kube_namespace().await;
    common::install_crd(&ns.client).await;
    for (name, key, value) in [
        (
            common::DB_SECRET,
            "url",
            "postgres://herald@db.invalid/herald",
        ),
        (common::REDIS_SECRET, "url", "redis://redis.invalid:6379"),
        (
            common::KAFKA_SECRET,
            "brokers",
            settings().kafka_brokers.as_str(),
        ),
    ] {
        common::put_secret(&ns.client, &ns.name, name, key, value).await;
    }
    let listen = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.to_string()
    };
    let mut operator = tokio::process::Command::new(&operator_bin)
        .args([
            "--namespace",
            &ns.name,
            "--listen",
            &listen,
            "--leader-election",
            "false",
        ])
        .args(["--log-level", "warn"])
        .env("KUBECONFIG", &settings().kubeconfig)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", operator_bin.display()))?;
    let pid = operator
        .id()
        .ok_or_else(|| anyhow::anyhow!("operator exited"))?;

    let platforms: Api<NotificationPlatform> = Api::namespaced(ns.client.clone(), &ns.name);
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let started = Instant::now();
    for i in 0..count {
        let (notifications, dlq) = (unique_name("op-bench"), unique_name("op-bench-dlq"));
        let spec = json!({
            "database": {"name": common::DB_SECRET, "key": "url"},
            "redis": {"name": common::REDIS_SECRET, "key": "url"},
            "kafka": {
                "brokersSecretRef": {"name": common::KAFKA_SECRET, "key": "brokers"},
                "topics": [{"name": notifications, "partitions": 1}, {"name": dlq, "partitions": 1}],
                "notificationsTopic": notifications,
                "deadLetterTopic": dlq,
                "deletionPolicy": "Delete",
            },
            "schedules": [{"name": "cleanup", "schedule": "@daily", "job": "cleanup"}],
        });
        let platform = NotificationPlatform::new(&format!("p{i}"), serde_json::from_value(spec)?);
        platforms.create(&PostParams::default(), &platform).await?;
    }

    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        stand_in_for_kubelet(&deployments).await?;
        let ready = platforms
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| {
                p.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready == count {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready}/{count} Ready after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let to_ready = started.elapsed();

    let before = reconciles(&listen).await?;
    tokio::time::sleep(idle).await;
    let idle_reconciles = reconciles(&listen).await? - before;
    let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?;

    println!(
        "| resources | time to all Ready | reconciles in {} s idle | operator RSS |",
        idle.as_secs()
    );
    println!("|---|---|---|---|");
    println!(
        "| {count} | {:.1} s | {idle_reconciles} | {:.1} MiB |",
        to_ready.as_secs_f64(),
        rss_kib as f64 / 1024.0
    );

    // Leaves no topics behind on the shared Kafka: deletionPolicy Delete removes them.
    platforms
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !platforms
        .list(&ListParams::default())
        .await?
        .items
        .is_empty()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "platforms not deleted within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    operator.kill().await?;
    // No garbage collector runs in the test environment: free the cluster IPs by hand.
    let services: Api<Service> = Api::namespaced(ns.client.clone(), &ns.name);
    for service in services.list_metadata(&ListParams::default()).await?.items {
        services
            .delete(&service.name_any(), &DeleteParams::default())
            .await?;
    }
    Ok(())
}

/// Reports all desired replicas of every Deployment as ready.
async fn stand_in_for_kubelet(deployments: &Api<Deployment>) -> anyhow::Result<()> {
    for deployment in deployments.list(&ListParams::default()).await?.items {
        let replicas = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let ready = deployment
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        if ready == replicas {
            continue;
        }
        let status = json!({"status": {
            "observedGeneration": deployment.metadata.generation,
            "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
        }});
        let name = deployment.metadata.name.unwrap_or_default();
        deployments
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
    }
    Ok(())
}

/// Total reconciles so far, from the operator's /metrics.
async fn reconciles(listen: &str) -> anyhow::Result<f64> {
    let mut stream = tokio::net::TcpStream::connect(listen).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body
        .lines()
        .filter(|l| l.starts_with("herald_operator_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
