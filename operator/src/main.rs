//! `operator` (or `operator run`): the controller. `operator crdgen`: writes the CRD YAML.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use herald_runtime::telemetry::{self, TelemetryArgs};
use kube::api::ListParams;
use kube::{Api, Client};
use operator::controller::{self, Config};
use operator::crd::{NotificationPlatform, crd_yaml};
use operator::http::{self, Probes};
use operator::leader::LeaseLock;
use operator::metrics::Metrics;
use tokio::sync::watch;
use tracing::{error, info};

#[derive(Parser)]
#[command(
    version,
    about = "Kubernetes operator for Herald NotificationPlatforms"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run(RunArgs),
    /// Write the NotificationPlatform CRD as YAML.
    Crdgen {
        /// Output file; `-` for stdout.
        #[arg(
            long,
            short,
            default_value = "crds/notificationplatforms.herald.dev.yaml"
        )]
        output: PathBuf,
    },
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Watch only this namespace (all namespaces when unset).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Elect a leader on a Lease, so that several replicas can run.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    #[arg(long, env = "LEASE_NAME", default_value = "herald-operator")]
    lease_name: String,
    /// Namespace of the Lease; the operator's own namespace in a pod.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Identity in the Lease and in Events; the pod name in a pod.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Kafka admin request may take before Kafka counts as unreachable.
    #[arg(long, env = "KAFKA_TIMEOUT_SECONDS", default_value_t = 10)]
    kafka_timeout_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crdgen { output }) => crdgen(&output),
        Some(Command::Run(args)) => run(args, &cli.telemetry).await,
        None => run(cli.run, &cli.telemetry).await,
    }
}

fn crdgen(output: &PathBuf) -> anyhow::Result<()> {
    let yaml = crd_yaml();
    if output.as_os_str() == "-" {
        print!("{yaml}");
        return Ok(());
    }
    std::fs::write(output, yaml).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("wrote {}", output.display());
    Ok(())
}

async fn run(args: RunArgs, telemetry_args: &TelemetryArgs) -> anyhow::Result<()> {
    let _telemetry = telemetry::init(
        "herald-operator",
        telemetry_args,
        telemetry::LogOutput::Stdout,
    )?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API server (in-cluster config or KUBECONFIG)")?;
    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            // An error means the sender is gone, which also means: stop.
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    herald_runtime::shutdown::on_signal(move || {
        info!("shutting down");
        let _ = stop.send(true);
    });

    let probes = Probes {
        metrics: Metrics::new(),
        ready: Arc::default(),
    };
    let server = tokio::spawn(http::serve(args.listen, probes.clone(), shutdown()));

    // Fail with a clear message, not a crash loop of watch errors, when the CRD is missing or
    // the operator may not read what it watches (the same scope as the controller's watch).
    let platforms: Api<NotificationPlatform> = match &args.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let scope = args
        .namespace
        .as_deref()
        .map_or("in all namespaces".to_owned(), |ns| {
            format!("in namespace {ns}")
        });
    platforms
        .list_metadata(&ListParams::default().limit(1))
        .await
        .map_err(|error| match &error {
            kube::Error::Api(status) if status.code == 404 => anyhow::anyhow!(
                "the NotificationPlatform CRD is not installed: kubectl apply -f crds/"
            ),
            kube::Error::Api(status) if status.code == 403 => anyhow::anyhow!(
                "may not list NotificationPlatforms {scope}: grant the RBAC of charts/herald-operator \
                 ({})",
                status.message
            ),
            _ => anyhow::Error::new(error).context(format!("listing NotificationPlatforms {scope}")),
        })?;
    probes.ready.store(true, Ordering::Relaxed);

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));
    let config = Config {
        namespace: args.namespace.clone(),
        kafka_timeout: Duration::from_secs(args.kafka_timeout_seconds),
        instance: Some(identity.clone()),
        ..Config::default()
    };
    let controller = controller::run(client.clone(), config, probes.metrics.clone(), shutdown());

    if args.leader_election {
        let lock = LeaseLock::new(
            client,
            &args.lease_namespace,
            &args.lease_name,
            &identity,
            Duration::from_secs(15),
        );
        tokio::select! {
            () = lock.acquire() => {}
            () = shutdown() => return Ok(()),
        }
        let lost = tokio::select! {
            () = controller => false,
            () = lock.hold() => true,
        };
        if lost {
            error!("lost the leader lease; exiting so that only one replica reconciles");
            anyhow::bail!("lost the leader lease");
        }
        lock.release().await.context("releasing the leader lease")?;
    } else {
        controller.await;
    }
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    Ok(())
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "herald-operator".into())
}
