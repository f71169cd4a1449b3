//! `loadgen rest`: closed-loop HTTP load. Each of N workers owns one keep-alive connection
//! and sends its next request as soon as the previous answer is read, like wrk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde::Serialize;
use tokio::time::Instant;

use crate::failure::Failure;
use crate::http::{self, ErrorCounts, ErrorKind, Sender};
use crate::latency::{self, Summary};
use crate::target::{Target, TargetArgs};
use crate::{duration, limits, report};

#[derive(Debug, Args)]
pub struct RestArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// GET expects 200; POST sends a small notification and expects 201.
    #[arg(long, value_enum, default_value_t = RestMethod::Get)]
    pub method: RestMethod,

    /// Request path (with query string, if any).
    #[arg(long, default_value = "/api/notifications")]
    pub path: String,

    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    pub concurrency: u64,

    /// How long to measure (after the warm-up). With --requests, the most it may take.
    #[arg(long, default_value = "10s", value_parser = duration::parse_positive)]
    pub duration: Duration,

    /// Stop after this many measured requests (still bounded by --duration).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Load sent before measuring, to fill caches and open connections; not counted.
    #[arg(long, default_value = "2s", value_parser = duration::parse)]
    pub warmup: Duration,

    /// A request not answered within this counts as a timeout error.
    #[arg(long, default_value = "5s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RestMethod {
    Get,
    Post,
}

impl RestMethod {
    fn name(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

const POST_BODY: &str = r#"{"message":"loadgen rest","type":"info"}"#;

#[derive(Debug, Serialize)]
pub struct RestReport {
    pub method: RestMethod,
    pub url: String,
    pub concurrency: u64,
    /// Seconds measured (after the warm-up).
    pub seconds: f64,
    /// Requests answered with the expected status while measuring.
    pub ok: u64,
    pub errors: ErrorCounts,
    pub error_total: u64,
    pub requests_per_second: f64,
    /// Latency of the successful requests.
    pub latency: Summary,
}

struct Plan {
    target: Target,
    method: RestMethod,
    path: String,
    timeout: Duration,
    measure_from: Instant,
    end: Instant,
    limit: Option<u64>,
    measured: AtomicU64,
    stop: AtomicBool,
}

struct WorkerResult {
    histogram: Histogram<u64>,
    errors: ErrorCounts,
}

pub async fn run(args: RestArgs) -> Result<(), Failure> {
    let target = Target::resolve(&args.target).await?;
    limits::raise_open_files(args.concurrency + 256)?;
    let measure_from = Instant::now() + args.warmup;
    let plan = Arc::new(Plan {
        target,
        method: args.method,
        path: args.path.clone(),
        timeout: args.timeout,
        measure_from,
        end: measure_from + args.duration,
        limit: args.requests,
        measured: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(worker(plan.clone())))
        .collect();
    let mut histogram = latency::histogram();
    let mut errors = ErrorCounts::default();
    for worker in workers {
        let result = worker
            .await
            .map_err(|error| anyhow::anyhow!("a load worker failed: {error}"))?;
        histogram
            .add(&result.histogram)
            .map_err(|error| anyhow::anyhow!("merging histograms: {error:?}"))?;
        errors.merge(&result.errors);
    }
    let seconds = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let ok = histogram.len();
    let report = RestReport {
        method: args.method,
        url: format!("{}{}", args.target.url.trim_end_matches('/'), args.path),
        concurrency: args.concurrency,
        seconds: (seconds * 1000.0).round() / 1000.0,
        ok,
        error_total: errors.total(),
        requests_per_second: if seconds > 0.0 {
            (ok as f64 / seconds * 10.0).round() / 10.0
        } else {
            0.0
        },
        latency: Summary::of(&histogram),
        errors,
    };
    let rows = [
        (
            "target",
            format!(
                "{} {} x{}",
                report.method.name(),
                report.url,
                report.concurrency
            ),
        ),
        ("measured", format!("{:.2} s", report.seconds)),
        ("requests/s", report::rate(report.requests_per_second)),
        ("ok", report.ok.to_string()),
        ("errors", report.errors.line()),
        ("latency", report.latency.line()),
    ];
    report::print(args.target.json, "loadgen rest", &report, &rows);
    Ok(())
}

async fn worker(plan: Arc<Plan>) -> WorkerResult {
    let mut result = WorkerResult {
        histogram: latency::histogram(),
        errors: ErrorCounts::default(),
    };
    let (method, expected, body) = match plan.method {
        RestMethod::Get => (Method::GET, StatusCode::OK, None),
        RestMethod::Post => (
            Method::POST,
            StatusCode::CREATED,
            Some(Bytes::from_static(POST_BODY.as_bytes())),
        ),
    };
    let mut sender: Option<Sender> = None;
    while Instant::now() < plan.end && !plan.stop.load(Ordering::Relaxed) {
        let connection = match &mut sender {
            Some(connection) => connection,
            None => match http::connect(&plan.target, plan.timeout).await {
                Ok(connection) => sender.insert(connection),
                Err(kind) => {
                    if Instant::now() >= plan.measure_from {
                        result.errors.add(kind);
                    }
                    // A refused connection fails at once: do not spin on it.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let measuring = started >= plan.measure_from;
        if measuring
            && let Some(limit) = plan.limit
            && plan.measured.fetch_add(1, Ordering::Relaxed) >= limit
        {
            plan.stop.store(true, Ordering::Relaxed);
            break;
        }
        let request = http::request(&plan.target, method.clone(), &plan.path, body.clone());
        let outcome = match http::send(connection, request, plan.timeout).await {
            Ok((status, _)) if status == expected => Ok(()),
            Ok((status, _)) => Err(ErrorKind::Status(status)),
            Err(kind) => Err(kind),
        };
        match outcome {
            Ok(()) if measuring => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                result.histogram.saturating_record(micros.max(1));
            }
            Ok(()) => {}
            Err(kind) => {
                if kind.breaks_connection() {
                    sender = None;
                }
                if measuring {
                    result.errors.add(kind);
                }
            }
        }
    }
    result
}
