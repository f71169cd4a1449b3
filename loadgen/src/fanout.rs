//! `loadgen fanout`: N stream clients, M notifications published through the REST API, and
//! every delivery timed from just before its POST to its receipt.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::failure::Failure;
use crate::http::ErrorCounts;
use crate::probe::Publisher;
use crate::stream::{self, Kind, Subscriber, Transport};
use crate::tally::{Deliveries, Tally};
use crate::target::{Target, TargetArgs};
use crate::{clock, duration, limits, probe, proc_stats, report};

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    #[arg(long, value_enum)]
    pub transport: Transport,

    /// Stream clients to open (each one connection).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub clients: u64,

    /// Notifications to publish.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub messages: u64,

    /// Time between publishes.
    #[arg(long, default_value = "100ms", value_parser = duration::parse_positive)]
    pub interval: Duration,

    /// The api-server's process id: report its RSS per connection and CPU per delivery.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Client handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub connect_parallel: u64,

    /// A client not live within this counts as failed to connect.
    #[arg(long, default_value = "10s", value_parser = duration::parse_positive)]
    pub connect_timeout: Duration,

    /// How long to wait for outstanding deliveries after the last publish.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub drain: Duration,

    /// A POST not answered within this counts as a timeout error.
    #[arg(long, default_value = "5s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct FanoutReport {
    pub transport: Transport,
    pub url: String,
    pub clients: u64,
    pub connected: u64,
    pub connect_failures: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_error: Option<String>,
    pub connect_seconds: f64,
    pub messages: u64,
    pub interval_ms: f64,
    pub published: u64,
    pub publish_errors: ErrorCounts,
    /// Clients whose stream ended or failed before the run did.
    pub clients_lost: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_error: Option<String>,
    /// `clients * messages` expected; latency from just before each POST to receipt.
    pub deliveries: Deliveries,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUsage>,
}

#[derive(Debug, Serialize)]
pub struct ServerUsage {
    pub pid: u32,
    pub rss_before_kib: u64,
    pub rss_connected_kib: u64,
    pub rss_per_connection_kib: f64,
    /// Server CPU time from the first publish until the deliveries were in.
    pub cpu_ms: f64,
    pub cpu_us_per_delivery: f64,
}

struct ClientEnd {
    tally: Tally,
    /// Why the stream ended before the run did, if it did.
    lost: Option<String>,
    /// Kept open until every client is done: clients that hang up while others still wait
    /// for the last notification would measure the server's (and loadgen's) teardown of
    /// their connections instead.
    _subscriber: Subscriber,
}

pub async fn run(args: FanoutArgs) -> Result<(), Failure> {
    let target = Target::resolve(&args.target).await?;
    limits::raise_open_files(args.clients + 256)?;
    let rss_before = args.server_pid.map(proc_stats::rss_kib).transpose()?;

    let run = Arc::<str>::from(probe::run_id());
    let stop = CancellationToken::new();
    let mut receivers = Vec::new();
    let connected = stream::connect_all(
        args.transport,
        &target,
        args.clients,
        usize::try_from(args.connect_parallel).unwrap_or(usize::MAX),
        args.connect_timeout,
        |subscriber| {
            receivers.push(tokio::spawn(receive(
                subscriber,
                run.clone(),
                args.messages,
                stop.clone(),
            )));
        },
    )
    .await;
    let connected_count = connected.connected;
    // Let allocations from the last handshakes settle before reading the RSS.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = args.server_pid.map(proc_stats::rss_kib).transpose()?;
    let cpu_before = args.server_pid.map(proc_stats::cpu_time).transpose()?;

    let mut publisher = Publisher::new(target.clone(), run.to_string(), args.timeout);
    let mut publish_errors = ErrorCounts::default();
    let mut published = 0;
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for index in 0..args.messages {
        ticker.tick().await;
        match publisher.publish(index, clock::now_micros()).await {
            Ok(()) => published += 1,
            Err(kind) => publish_errors.add(kind),
        }
    }

    // Receivers end on their own once they have every message; the rest are stopped here.
    let deadline = Instant::now() + args.drain;
    let stopper = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::time::sleep_until(deadline).await;
            stop.cancel();
        }
    });
    let mut ends = Vec::with_capacity(receivers.len());
    for receiver in receivers {
        ends.push(
            receiver
                .await
                .map_err(|error| anyhow::anyhow!("a client task failed: {error}"))?,
        );
    }
    stopper.abort();
    let cpu_after = args.server_pid.map(proc_stats::cpu_time).transpose()?;

    let deliveries = Deliveries::of(
        args.clients * args.messages,
        ends.iter().map(|end| &end.tally),
    );
    let server = match (
        args.server_pid,
        rss_before,
        rss_connected,
        cpu_before,
        cpu_after,
    ) {
        (Some(pid), Some(before), Some(after), Some(cpu_before), Some(cpu_after)) => {
            let cpu = cpu_after.saturating_sub(cpu_before);
            Some(ServerUsage {
                pid,
                rss_before_kib: before,
                rss_connected_kib: after,
                rss_per_connection_kib: round2(
                    after.saturating_sub(before) as f64 / connected_count.max(1) as f64,
                ),
                cpu_ms: round2(cpu.as_secs_f64() * 1000.0),
                cpu_us_per_delivery: round2(
                    cpu.as_secs_f64() * 1e6 / deliveries.delivered.max(1) as f64,
                ),
            })
        }
        _ => None,
    };
    let report = FanoutReport {
        transport: args.transport,
        url: args.target.url.clone(),
        clients: args.clients,
        connected: connected_count,
        connect_failures: connected.failed,
        connect_error: connected.first_error,
        connect_seconds: round2(connected.seconds),
        messages: args.messages,
        interval_ms: args.interval.as_secs_f64() * 1000.0,
        published,
        publish_errors,
        clients_lost: ends.iter().filter(|end| end.lost.is_some()).count() as u64,
        client_error: ends.iter().find_map(|end| end.lost.clone()),
        deliveries,
        server,
    };
    let mut rows = vec![
        (
            "clients",
            format!(
                "{}: {} of {} connected in {:.2} s{}",
                report.transport.name(),
                report.connected,
                report.clients,
                report.connect_seconds,
                report
                    .connect_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first failure: {e})"))
            ),
        ),
        (
            "published",
            format!(
                "{} of {} every {} ms, errors: {}",
                report.published,
                report.messages,
                report.interval_ms,
                report.publish_errors.line()
            ),
        ),
        ("delivered", report.deliveries.line()),
        ("latency", report.deliveries.latency.line()),
        (
            "clients lost",
            format!(
                "{}{}",
                report.clients_lost,
                report
                    .client_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first: {e})"))
            ),
        ),
    ];
    if let Some(server) = &report.server {
        rows.push((
            "server RSS",
            format!(
                "{} KiB -> {} KiB, {:.2} KiB per connection",
                server.rss_before_kib, server.rss_connected_kib, server.rss_per_connection_kib
            ),
        ));
        rows.push((
            "server CPU",
            format!(
                "{:.0} ms, {:.2} us per delivery",
                server.cpu_ms, server.cpu_us_per_delivery
            ),
        ));
    }
    report::print(args.target.json, "loadgen fanout", &report, &rows);
    Ok(())
}

async fn receive(
    mut subscriber: Subscriber,
    run: Arc<str>,
    messages: u64,
    stop: CancellationToken,
) -> ClientEnd {
    let mut tally = Tally::new(messages);
    let mut lost = None;
    while tally.unique() < messages {
        let received = tokio::select! {
            () = stop.cancelled() => break,
            received = subscriber.next() => received,
        };
        match received {
            Ok(Some(received)) => {
                let now = clock::now_micros();
                if received.kind == Kind::Created
                    && let Some((index, sent_at)) = received.notification.probe_of(&run)
                {
                    tally.record(index, sent_at, now);
                }
            }
            Ok(None) => {
                lost = Some("the server ended the stream".into());
                break;
            }
            Err(error) => {
                lost = Some(format!("{error:#}"));
                break;
            }
        }
    }
    ClientEnd {
        tally,
        lost,
        _subscriber: subscriber,
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
