//! Streams served straight on their sockets: Server-Sent Events, plain WebSocket and
//! Socket.IO-over-WebSocket connections [detached](crate::connection::Detach) from hyper.
//!
//! A client first catches up from the event log in a task of its own. Once live, it joins a
//! [shard], which writes to all of its clients without waking a task per client.

mod protocol;
mod shard;

pub use protocol::Protocol;
pub use shard::run_shard;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald_core::fanout::Fanout;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::gauges::{ConnectionGauge, OpenStreams, StreamCounters};
use super::replay::{Delivery, Feed, Step};

/// A catching-up client is written to once this much is gathered.
const CATCH_UP_WRITE: usize = 32 * 1024;
/// How long a catching-up client that does not read may hold up shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Hands live clients to the shards, in turn.
pub struct DirectStreams {
    shards: Vec<mpsc::UnboundedSender<Client>>,
    next: AtomicUsize,
    /// What the shards write: the fan-out's items.
    fanout: Fanout,
    open: Arc<OpenStreams>,
    shutdown: CancellationToken,
}

/// A shard's incoming clients; run it with [`run_shard`].
pub struct ShardInbox(mpsc::UnboundedReceiver<Client>);

impl DirectStreams {
    /// `shards` tasks will write (at least one): one per core keeps every core busy.
    pub fn new(
        shards: usize,
        fanout: Fanout,
        open: Arc<OpenStreams>,
        shutdown: CancellationToken,
    ) -> (Arc<Self>, Vec<ShardInbox>) {
        let (senders, inboxes) = (0..shards.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::unbounded_channel();
                (sender, ShardInbox(receiver))
            })
            .unzip();
        let streams = Self {
            shards: senders,
            next: AtomicUsize::new(0),
            fanout,
            open,
            shutdown,
        };
        (Arc::new(streams), inboxes)
    }

    fn join(&self, client: Client) {
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        // The shards stop only at shutdown, when the client's feed would end it anyway.
        let _ = self.shards[shard].send(client);
    }
}

/// Serves the stream of `feed` on `socket`, whose response head has been written; `first`
/// goes out before anything else.
pub fn serve(
    socket: TcpStream,
    protocol: Protocol,
    first: Vec<u8>,
    feed: Feed,
    streams: &Arc<DirectStreams>,
) {
    let client = Client {
        _gauge: streams.open.open(protocol.transport()),
        socket,
        protocol,
        feed,
        unsent: first,
    };
    tokio::spawn(catch_up(client, streams.clone()));
}

pub struct Client {
    socket: TcpStream,
    protocol: Protocol,
    feed: Feed,
    /// Bytes meant for the client that its socket did not take yet.
    unsent: Vec<u8>,
    _gauge: ConnectionGauge,
}

/// Writes what the client missed (and, at first, the `recovered` event), then hands the
/// client to a shard; also how a live client catches up after the fan-out resynchronizes.
async fn catch_up(mut client: Client, streams: Arc<DirectStreams>) {
    let counters = streams.open.counters(client.protocol.transport());
    let mut out = std::mem::take(&mut client.unsent);
    loop {
        let (bytes, more) = match client.feed.try_next() {
            Step::Idle => break,
            Step::ReadLog => {
                if !write_out(&mut client, &mut out, &streams.shutdown, &counters).await {
                    return;
                }
                match client.feed.read_log().await {
                    Ok(()) => continue,
                    Err(error) => client
                        .protocol
                        .other(Err(error), client.feed.last_sequence()),
                }
            }
            Step::Ready(Delivery::Event(event)) => {
                counters.deliveries.inc();
                (client.protocol.event(&event), true)
            }
            Step::Ready(delivery) => {
                if matches!(delivery, Delivery::SlowConsumer) {
                    counters.slow_consumers.inc();
                }
                client
                    .protocol
                    .other(Ok(delivery), client.feed.last_sequence())
            }
        };
        out.extend_from_slice(&bytes);
        if !more {
            write_out(&mut client, &mut out, &streams.shutdown, &counters).await;
            return;
        }
        if out.len() >= CATCH_UP_WRITE
            && !write_out(&mut client, &mut out, &streams.shutdown, &counters).await
        {
            return;
        }
    }
    if write_out(&mut client, &mut out, &streams.shutdown, &counters).await {
        streams.join(client);
    }
}

/// Writes `out` to a catching-up client; false if the client is gone, was cut as too slow,
/// or did not take it within a grace period after shutdown.
async fn write_out(
    client: &mut Client,
    out: &mut Vec<u8>,
    shutdown: &CancellationToken,
    counters: &StreamCounters,
) -> bool {
    let written = tokio::select! {
        written = client.socket.write_all(out) => written.is_ok(),
        () = client.feed.fell_behind() => {
            counters.slow_consumers.inc();
            false
        }
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => false,
    };
    out.clear();
    written
}
