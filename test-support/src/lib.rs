//! Connection settings and per-test isolation for integration tests that run against the real
//! PostgreSQL, Redis, Kafka and Kubernetes API server started by `scripts/testenv up`.
//!
//! Settings come from the environment (`DATABASE_URL`, `REDIS_URL`, `KAFKA_BROKERS`,
//! `KUBECONFIG`) or, when a variable is unset, from the file `scripts/testenv up` writes
//! (`$HERALD_RUN_DIR/env`). A component that cannot be reached fails the test with a message
//! naming the `up` command: a test never passes without the component it needs.

mod kafka;
mod kube_env;
mod postgres;
mod private;
mod redis_env;
mod settings;

pub use kafka::{KafkaTopic, kafka_topic};
pub use kube_env::{KubeNamespace, kube_client, kube_namespace};
pub use postgres::{TestDatabase, test_database};
pub use private::PrivateEnv;
pub use redis_env::{TestRedis, test_redis};
pub use settings::{Settings, settings};

/// A short unique suffix for names of databases, topics, namespaces and key prefixes.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// Awaits `connecting` for at most 10 s: its value, or the failure of the calling test with a
/// message naming the component (see [`unreachable_component`]).
async fn reach<T, E: std::fmt::Display>(
    component: &str,
    target: &str,
    connecting: impl Future<Output = Result<T, E>>,
) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), connecting)
        .await
        .unwrap_or_else(|_| unreachable_component(component, target, "timed out after 10 s"))
        .unwrap_or_else(|e| unreachable_component(component, target, e))
}

/// Fails the calling test with a message that says how to start the missing component;
/// `component` is its name in `scripts/testenv` (postgres, redis, kafka, kube).
#[track_caller]
fn unreachable_component(component: &str, target: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "{component} is not reachable at {target}: {error}\n\
         Start the test environment with `scripts/testenv up` (or `scripts/testenv up {component}`)."
    )
}
