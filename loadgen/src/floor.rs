//! `loadgen floor-server` and `loadgen floor-client`: the least a fan-out can cost here.
//!
//! The server accepts N plain TCP connections and then, M times, writes one frame to every
//! one of them from a single loop: a non-blocking write per connection, no task, no framing,
//! no HTTP. Its CPU time per write is the kernel's price for one delivery over loopback
//! (on loopback the sender's system call also runs the receiver's TCP input), the floor under
//! the api-server's CPU per delivery and fan-out latency, as the ceiling server is the roof
//! over its HTTP figures.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::failure::Failure;
use crate::limits::raise_open_files;
use crate::{duration, proc_stats, report};

#[derive(Debug, Args)]
pub struct FloorServerArgs {
    /// Port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 3998)]
    pub port: u16,

    /// Connections to wait for before writing.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub clients: u64,

    /// Rounds: each writes one frame to every connection.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub messages: u64,

    /// Time between rounds.
    #[arg(long, default_value = "100ms", value_parser = duration::parse_positive)]
    pub interval: Duration,

    /// Bytes per frame (about one SSE notification event).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub size: u64,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FloorClientArgs {
    /// The floor server's port (127.0.0.1).
    #[arg(long, default_value_t = 3998)]
    pub port: u16,

    /// Connections to open.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub clients: u64,

    /// Give up when the server does not listen, or connections are still open, after this long.
    #[arg(long, default_value = "60s", value_parser = duration::parse_positive)]
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct FloorReport {
    pub clients: u64,
    pub messages: u64,
    pub frame_bytes: u64,
    pub writes: u64,
    /// Writes the kernel refused at once (socket buffer full): none expected.
    pub would_block: u64,
    /// Writes that failed otherwise (a client went away).
    pub failed: u64,
    pub cpu_us_per_write: f64,
    /// Wall time of one round of writes to every connection: the least a fan-out to this
    /// many clients takes.
    pub round_ms_median: f64,
    pub round_ms_max: f64,
}

pub async fn serve(args: FloorServerArgs) -> Result<(), Failure> {
    raise_open_files(args.clients + 64)?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    eprintln!(
        "loadgen floor-server listening on {address}, waiting for {} clients",
        args.clients
    );
    let mut connections = Vec::with_capacity(args.clients as usize);
    while (connections.len() as u64) < args.clients {
        let (stream, _) = listener.accept().await.context("accepting")?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        connections.push(stream);
    }
    let frame = vec![b'x'; args.size as usize];
    // Let the clients' last handshakes settle before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = std::process::id();
    let cpu_before = proc_stats::cpu_time(pid)?;
    let mut rounds = Vec::with_capacity(args.messages as usize);
    let mut would_block = 0;
    let mut failed = 0;
    for round in 0..args.messages {
        if round > 0 {
            tokio::time::sleep(args.interval).await;
        }
        let started = Instant::now();
        for connection in &connections {
            match connection.try_write(&frame) {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => would_block += 1,
                Err(_) => failed += 1,
            }
        }
        rounds.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let cpu = proc_stats::cpu_time(pid)?.saturating_sub(cpu_before);
    // The clients count bytes until the connection closes.
    drop(connections);
    rounds.sort_by(f64::total_cmp);
    let writes = args.clients * args.messages;
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    let result = FloorReport {
        clients: args.clients,
        messages: args.messages,
        frame_bytes: args.size,
        writes,
        would_block,
        failed,
        // Includes the sleeps' wake-ups: a handful of microseconds per round.
        cpu_us_per_write: round2(cpu.as_secs_f64() * 1e6 / writes as f64),
        round_ms_median: round2(rounds[rounds.len() / 2]),
        round_ms_max: round2(rounds[rounds.len() - 1]),
    };
    let rows = [
        ("clients", result.clients.to_string()),
        ("writes", result.writes.to_string()),
        ("would block", result.would_block.to_string()),
        ("failed", result.failed.to_string()),
        ("CPU per write", format!("{} µs", result.cpu_us_per_write)),
        (
            "one round",
            format!(
                "{} ms median, {} ms max",
                result.round_ms_median, result.round_ms_max
            ),
        ),
    ];
    report::print(args.json, "floor-server", &result, &rows);
    Ok(())
}

pub async fn read(args: FloorClientArgs) -> Result<(), Failure> {
    raise_open_files(args.clients + 64)?;
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let mut readers = tokio::task::JoinSet::new();
    let deadline = Instant::now() + args.timeout;
    for _ in 0..args.clients {
        let mut stream = loop {
            match TcpStream::connect(address).await {
                Ok(stream) => break stream,
                // The server may not listen yet.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error)
                        .context(format!("connecting to {address}"))
                        .into());
                }
            }
        };
        readers.spawn(async move {
            let mut buffer = [0u8; 4096];
            let mut total = 0u64;
            while let Ok(read) = stream.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
                total += read as u64;
            }
            total
        });
    }
    let mut bytes = 0;
    let deadline = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = readers.join_next() => match next {
                Some(read) => bytes += read.unwrap_or(0),
                None => break,
            },
            () = &mut deadline => {
                return Err(anyhow::anyhow!("{} connections still open after {:?}", readers.len(), args.timeout).into());
            }
        }
    }
    eprintln!(
        "loadgen floor-client: {} connections read {bytes} bytes",
        args.clients
    );
    Ok(())
}
