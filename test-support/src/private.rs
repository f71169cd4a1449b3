//! A private copy of some components, for tests that stop and restart one (outages) without
//! disturbing the shared test environment that other tests use at the same time.
//!
//! It runs `scripts/testenv` with its own run directory and free ports, so it gets real
//! servers of the same versions; dropping it stops them and deletes their data.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use crate::settings;

pub struct PrivateEnv {
    run_dir: PathBuf,
    ports: Vec<(&'static str, u16)>,
    vars: HashMap<String, String>,
}

/// The port variables `scripts/testenv` reads. Every one gets a free port, so nothing private
/// can land on a shared server's port.
const PORT_VARIABLES: [&str; 8] = [
    "HERALD_PG_PORT",
    "HERALD_REDIS_PORT",
    "HERALD_KAFKA_PORT",
    "HERALD_KAFKA_CONTROLLER_PORT",
    // The listener for the node's pods, on its bridge.
    "HERALD_KAFKA_POD_PORT",
    "HERALD_ETCD_PORT",
    "HERALD_ETCD_PEER_PORT",
    "HERALD_APISERVER_PORT",
];

impl PrivateEnv {
    /// Starts the named components (`postgres`, `redis`, `kafka`, `kube`) and waits until they
    /// answer: several seconds for Kafka.
    pub async fn start(components: &[&str]) -> Self {
        let run_dir = std::env::temp_dir().join(crate::unique_name("herald-private"));
        let ports = PORT_VARIABLES
            .into_iter()
            .map(|variable| (variable, free_port()))
            .collect();
        let mut env = Self {
            run_dir,
            ports,
            vars: HashMap::new(),
        };
        env.testenv(&[&["up"], components].concat()).await;
        let output = tokio::process::Command::from(env.command(&["env"]))
            .output()
            .await
            .expect("run scripts/testenv env");
        env.vars = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("export "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        env
    }

    /// A connection setting of the private components: `DATABASE_URL`, `REDIS_URL`,
    /// `KAFKA_BROKERS` or `KUBECONFIG`.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("the private environment has no {name}"))
    }

    /// Stops a component, keeping its data.
    pub async fn stop(&self, component: &str) {
        self.testenv(&["stop", component]).await;
    }

    /// Starts a stopped component again and waits until it answers.
    pub async fn restart(&self, component: &str) {
        self.testenv(&["up", component]).await;
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&settings().testenv);
        command.args(args).env("HERALD_RUN_DIR", &self.run_dir);
        for (variable, port) in &self.ports {
            command.env(variable, port.to_string());
        }
        command
    }

    async fn testenv(&self, args: &[&str]) {
        let output = tokio::process::Command::from(self.command(args))
            .output()
            .await
            .expect("run scripts/testenv");
        assert!(
            output.status.success(),
            "scripts/testenv {} failed for the private environment:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PrivateEnv {
    fn drop(&mut self) {
        let _ = self.command(&["down"]).output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}
