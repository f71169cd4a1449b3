//! `loadgen e2e`: POSTs at a steady rate and times each notification from the moment its
//! POST was due (so time spent waiting for a free connection counts) until a stream client receives its `notification.updated` with status `delivered`:
//! api-server -> outbox relay -> Kafka -> processor -> fan-out -> client (in embedded mode the
//! processor step runs inside the api-server).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::failure::Failure;
use crate::http::ErrorCounts;
use crate::probe::Publisher;
use crate::stream::{self, Kind, Subscriber, Transport};
use crate::tally::{Deliveries, Tally};
use crate::target::{Target, TargetArgs};
use crate::{clock, duration, limits, probe, report};

/// Client handshakes in flight at once while connecting.
const CONNECT_PARALLEL: usize = 200;

#[derive(Debug, Args)]
pub struct E2eArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    pub transport: Transport,

    /// Notifications per second to create.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rate: u64,

    /// How long to keep creating them.
    #[arg(long, default_value = "10s", value_parser = duration::parse_positive)]
    pub duration: Duration,

    /// Stream clients that each must see every notification delivered.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub clients: u64,

    /// Keep-alive connections the POSTs are spread over. A POST due while all are busy waits
    /// in a short queue; beyond it the slot is skipped and counted as not sent.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub connections: u64,

    /// How long to wait for outstanding deliveries after the last POST.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    pub drain: Duration,

    /// A client not live within this counts as failed to connect.
    #[arg(long, default_value = "10s", value_parser = duration::parse_positive)]
    pub connect_timeout: Duration,

    /// A POST not answered within this counts as a timeout error.
    #[arg(long, default_value = "5s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct E2eReport {
    pub transport: Transport,
    pub url: String,
    pub clients: u64,
    pub connected: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_error: Option<String>,
    pub target_rate: u64,
    /// Notifications created (201) per second of posting.
    pub achieved_rate: f64,
    pub created: u64,
    pub post_errors: ErrorCounts,
    /// Slots skipped because every connection was busy and the queue was full.
    pub not_sent: u64,
    /// Notifications a client saw marked `failed` instead of delivered.
    pub failed: u64,
    pub clients_lost: u64,
    /// `created * connected` expected; latency from when each POST was due to the
    /// `delivered` update.
    pub deliveries: Deliveries,
}

struct ClientEnd {
    tally: Tally,
    failed: u64,
    lost: bool,
}

pub async fn run(args: E2eArgs) -> Result<(), Failure> {
    let target = Target::resolve(&args.target).await?;
    limits::raise_open_files(args.clients + args.connections + 256)?;
    let total = (args.rate as f64 * args.duration.as_secs_f64()).ceil() as u64;

    let run = Arc::<str>::from(probe::run_id());
    let stop = CancellationToken::new();
    // Updates settled (delivered or failed) across all clients, to stop draining early.
    let settled = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    let connected = stream::connect_all(
        args.transport,
        &target,
        args.clients,
        CONNECT_PARALLEL,
        args.connect_timeout,
        |subscriber| {
            receivers.push(tokio::spawn(receive(
                subscriber,
                run.clone(),
                total,
                settled.clone(),
                stop.clone(),
            )));
        },
    )
    .await;
    let connected_count = connected.connected;

    let (slots, queue) =
        mpsc::channel::<(u64, u64)>(usize::try_from(args.connections * 4).unwrap_or(64));
    let queue = Arc::new(Mutex::new(queue));
    let posters: Vec<_> = (0..args.connections)
        .map(|_| {
            tokio::spawn(post(
                Publisher::new(target.clone(), run.to_string(), args.timeout),
                queue.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    // Catch up after a stall so the average rate holds.
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut not_sent = 0;
    for index in 0..total {
        ticker.tick().await;
        if slots.try_send((index, clock::now_micros())).is_err() {
            not_sent += 1;
        }
    }
    drop(slots);
    let mut created = 0;
    let mut post_errors = ErrorCounts::default();
    for poster in posters {
        let (ok, errors) = poster
            .await
            .map_err(|error| anyhow::anyhow!("a POST task failed: {error}"))?;
        created += ok;
        post_errors.merge(&errors);
    }
    let posting_seconds = started.elapsed().as_secs_f64();

    let deadline = Instant::now() + args.drain;
    while settled.load(Ordering::Relaxed) < created * connected_count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let mut ends = Vec::with_capacity(receivers.len());
    for receiver in receivers {
        ends.push(
            receiver
                .await
                .map_err(|error| anyhow::anyhow!("a client task failed: {error}"))?,
        );
    }

    let report = E2eReport {
        transport: args.transport,
        url: args.target.url.clone(),
        clients: args.clients,
        connected: connected_count,
        connect_error: connected.first_error,
        target_rate: args.rate,
        achieved_rate: (created as f64 / posting_seconds * 10.0).round() / 10.0,
        created,
        post_errors,
        not_sent,
        failed: ends.iter().map(|end| end.failed).sum(),
        clients_lost: ends.iter().filter(|end| end.lost).count() as u64,
        deliveries: Deliveries::of(created * connected_count, ends.iter().map(|end| &end.tally)),
    };
    let rows = [
        (
            "clients",
            format!(
                "{}: {} of {} connected{}",
                report.transport.name(),
                report.connected,
                report.clients,
                report
                    .connect_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (first failure: {e})"))
            ),
        ),
        (
            "created",
            format!(
                "{} at {}/s (target {}/s), errors: {}, not sent: {}",
                report.created,
                report::rate(report.achieved_rate),
                report.target_rate,
                report.post_errors.line(),
                report.not_sent
            ),
        ),
        ("delivered", report.deliveries.line()),
        ("failed", report.failed.to_string()),
        ("latency", report.deliveries.latency.line()),
        ("clients lost", report.clients_lost.to_string()),
    ];
    report::print(args.target.json, "loadgen e2e", &report, &rows);
    Ok(())
}

async fn post(
    mut publisher: Publisher,
    queue: Arc<Mutex<mpsc::Receiver<(u64, u64)>>>,
) -> (u64, ErrorCounts) {
    let mut created = 0;
    let mut errors = ErrorCounts::default();
    loop {
        let Some((index, due)) = queue.lock().await.recv().await else {
            return (created, errors);
        };
        match publisher.publish(index, due).await {
            Ok(()) => created += 1,
            Err(kind) => errors.add(kind),
        }
    }
}

async fn receive(
    mut subscriber: Subscriber,
    run: Arc<str>,
    total: u64,
    settled: Arc<AtomicU64>,
    stop: CancellationToken,
) -> ClientEnd {
    let mut end = ClientEnd {
        tally: Tally::new(total),
        failed: 0,
        lost: false,
    };
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return end,
            received = subscriber.next() => received,
        };
        let Ok(Some(received)) = received else {
            end.lost = true;
            return end;
        };
        let now = clock::now_micros();
        if received.kind != Kind::Updated {
            continue;
        }
        let Some((index, sent_at)) = received.notification.probe_of(&run) else {
            continue;
        };
        match received.notification.status.as_deref() {
            Some("delivered") => {
                let before = end.tally.unique();
                end.tally.record(index, sent_at, now);
                if end.tally.unique() > before {
                    settled.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some("failed") => {
                end.failed += 1;
                settled.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}
