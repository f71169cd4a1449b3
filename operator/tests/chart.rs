//! The Helm chart installs an operator that works with only the permissions the chart grants:
//! the chart is rendered by the real `helm`, applied by the real `kubectl`, and the operator
//! binary then runs as the chart's ServiceAccount (by impersonation) against the real API
//! server and Kafka, reconciling the example resource from `examples/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::{DB_SECRET, KAFKA_SECRET, REDIS_SECRET, eventually, install_crd, put_secret};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use operator::crd::NotificationPlatform;
use test_support::{kube_namespace, settings, unique_name};

const RELEASE: &str = "herald-operator";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a shell command with the test environment's tools (helm, kubectl) and settings.
fn with_tools(script: &str) -> String {
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; eval \"$('{}' env)\"; {script}",
            settings().testenv.display()
        ))
        .current_dir(repository())
        .output()
        .expect("bash");
    assert!(
        output.status.success(),
        "`{script}` failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_chart_lints_and_renders_both_scopes() {
    with_tools("helm lint --strict charts/herald-operator --kube-version 1.34.4 >/dev/null");
    let cluster = with_tools(
        "helm template herald-operator charts/herald-operator --namespace ops --kube-version 1.34.4",
    );
    assert!(cluster.contains("kind: ClusterRole\n"), "{cluster}");
    let scoped = with_tools(
        "helm template herald-operator charts/herald-operator --namespace ops --kube-version 1.34.4 \
         --set watchNamespace=apps",
    );
    assert!(
        !scoped.contains("kind: ClusterRole\n"),
        "a namespaced install needs no cluster role"
    );
    assert!(scoped.contains("value: \"apps\""), "{scoped}");
}

#[tokio::test]
async fn the_operator_reconciles_with_the_permissions_the_chart_grants() {
    let ns = kube_namespace().await;
    install_crd(&ns.client).await;
    with_tools(&format!(
        "helm template {RELEASE} charts/herald-operator --namespace {ns} --kube-version 1.34.4 \
         --set watchNamespace={ns} | kubectl apply --server-side -f - >/dev/null",
        ns = ns.name
    ));

    // A kubeconfig that acts as the chart's ServiceAccount.
    let service_account = format!("system:serviceaccount:{}:{RELEASE}", ns.name);
    let kubeconfig = tempfile::NamedTempFile::new().expect("kubeconfig");
    let admin = std::fs::read_to_string(&settings().kubeconfig).expect("the test kubeconfig");
    let mut config: serde_yaml::Value = serde_yaml::from_str(&admin).expect("kubeconfig YAML");
    config["users"][0]["user"]["as"] = service_account.clone().into();
    std::fs::write(
        kubeconfig.path(),
        serde_yaml::to_string(&config).expect("YAML"),
    )
    .expect("write");

    let denied = with_tools(&format!(
        "kubectl --kubeconfig {} auth can-i list secrets -n {} || true",
        kubeconfig.path().display(),
        ns.name
    ));
    assert_eq!(
        denied.trim(),
        "no",
        "the chart grants get on Secrets, not list"
    );

    for (name, key, value) in [
        (DB_SECRET, "url", "postgres://herald@db/herald".to_owned()),
        (REDIS_SECRET, "url", "redis://redis:6379".to_owned()),
        (KAFKA_SECRET, "brokers", settings().kafka_brokers.clone()),
    ] {
        put_secret(&ns.client, &ns.name, name, key, &value).await;
    }
    // Topics are cluster-wide in Kafka: give the example's their own names.
    let topic = unique_name("chart");
    let example = std::fs::read_to_string(repository().join("examples/notificationplatform.yaml"))
        .expect("the example")
        .replace("notifications-dlq", &format!("{topic}-dlq"))
        .replace(": notifications\n", &format!(": {topic}\n"));
    let platform: NotificationPlatform =
        serde_yaml::from_str(&example).expect("the example parses");
    let platforms: Api<NotificationPlatform> = Api::namespaced(ns.client.clone(), &ns.name);
    platforms
        .create(&Default::default(), &platform)
        .await
        .expect("the API server accepts the example");

    let log = tempfile::NamedTempFile::new().expect("log");
    let _operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_operator"))
        .arg("run")
        .env("KUBECONFIG", kubeconfig.path())
        .env("WATCH_NAMESPACE", &ns.name)
        .env("POD_NAMESPACE", &ns.name)
        .env("POD_NAME", "chart-test")
        .env("LEASE_NAME", RELEASE)
        .env("HTTP_LISTEN", "127.0.0.1:0")
        .env("LOG_FORMAT", "text")
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the operator binary");
    let log_text = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let _show_log = ShowLogOnPanic(log.path().to_owned());

    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let cron_jobs: Api<CronJob> = Api::namespaced(ns.client.clone(), &ns.name);
    eventually("the platform's children and topics", || async {
        let names: Vec<String> = deployments
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect();
        let schedules = cron_jobs.list(&Default::default()).await.ok()?.items.len();
        let current = platforms.get("herald").await.ok()?;
        let topics_ready = current
            .status
            .as_ref()?
            .conditions
            .iter()
            .any(|c| c.type_ == "KafkaTopicsReady" && c.status == "True");
        // The chart's own operator Deployment lives in the same namespace.
        let workloads = ["herald-api", "herald-processor"]
            .iter()
            .all(|wanted| names.iter().any(|name| name == wanted));
        (workloads && schedules == 3 && topics_ready).then_some(())
    })
    .await;
    // Created with the chart's `create` on Secrets, since the example names no API keys.
    let secrets: Api<Secret> = Api::namespaced(ns.client.clone(), &ns.name);
    assert!(
        secrets.get_opt("herald-api-keys").await.unwrap().is_some(),
        "the generated API keys Secret"
    );
    let log_text = log_text();
    assert!(
        !log_text.contains("forbidden"),
        "the operator hit a permission it lacks:\n{log_text}"
    );
}

/// Prints the operator's log when the test fails, so a failure says why.
struct ShowLogOnPanic(PathBuf);

impl Drop for ShowLogOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.0).unwrap_or_default();
            eprintln!("--- operator log ---\n{log}");
        }
    }
}
