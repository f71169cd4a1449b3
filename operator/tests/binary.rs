//! The `operator` binary as a process: probes, metrics, leader lease, graceful shutdown, crdgen.

mod common;

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use operator::crd::crd_yaml;
use test_support::{kube_namespace, settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use common::eventually;

const BINARY: &str = env!("CARGO_BIN_EXE_operator");

async fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    Some(response)
}

#[tokio::test]
async fn serves_probes_holds_the_lease_and_releases_it_on_sigterm() {
    let ns = kube_namespace().await;
    common::install_crd(&ns.client).await;
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut child = Command::new(BINARY)
        .args([
            "--namespace",
            &ns.name,
            "--listen",
            &addr,
            "--lease-namespace",
            &ns.name,
        ])
        .args(["--identity", "binary-test", "--log-format", "text"])
        .env("KUBECONFIG", &settings().kubeconfig)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starting the operator binary");

    eventually("/readyz answers 200", || async {
        get(&addr, "/readyz")
            .await?
            .starts_with("HTTP/1.1 200")
            .then_some(())
    })
    .await;
    assert!(
        get(&addr, "/healthz")
            .await
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    let metrics = get(&addr, "/metrics").await.unwrap();
    assert!(
        metrics.contains("herald_operator_reconcile_duration_seconds"),
        "{metrics}"
    );

    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let holder = || async {
        let lease = leases.get_opt("herald-operator").await.ok()??;
        Some(lease.spec?.holder_identity)
    };
    eventually("lease held by the operator", || async {
        (holder().await? == Some("binary-test".into())).then_some(())
    })
    .await;

    let pid = child.id().expect("operator running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("operator did not stop within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "operator exited with {status}");
    assert_eq!(holder().await, Some(None), "lease not released on shutdown");
}

#[tokio::test]
async fn crdgen_prints_the_crd_of_the_types() {
    let output = Command::new(BINARY)
        .args(["crdgen", "--output", "-"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), crd_yaml());
}
