//! Writes Server-Sent Events to the clients whose connections were
//! [taken over](crate::accept) from hyper.
//!
//! A client first catches up from the event log in a task of its own. Once live, it joins a
//! shard: one task that, for every item the fan-out sends, takes each of its clients' ready
//! deliveries and writes them straight to the socket, without waking a task per client, and
//! with the text of each event built once for all of them. A socket that takes only part of
//! a write keeps the rest; that client gets nothing more until the socket drains, and is cut
//! as a slow consumer once more than the stream buffer behind. The shard learns that a
//! socket drained, or that its client hung up, through a waker that names the client.

use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use axum::body::Bytes;
use futures::task::AtomicWaker;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::replay::{ConnectionGauge, Delivery, Feed, Step};
use super::sse::{self, Counters, TRANSPORT};
use crate::state::SharedState;

/// A catching-up client writes once it has gathered this much.
const CATCH_UP_WRITE: usize = 32 * 1024;
/// Clients served between two yields to the rest of the process.
const ROUND_SLICE: usize = 128;
/// How long a catching-up client that does not read may hold up shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// The end of a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Hands live clients to the shards, in turn.
pub struct SseWriter {
    shards: Vec<mpsc::UnboundedSender<Client>>,
    next: AtomicUsize,
}

/// A shard's incoming clients; run it with [`run_shard`].
pub struct ShardInbox(mpsc::UnboundedReceiver<Client>);

impl SseWriter {
    /// `shards` tasks will write (at least one): one per core keeps every core busy.
    pub fn new(shards: usize) -> (Self, Vec<ShardInbox>) {
        let (senders, inboxes) = (0..shards.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::unbounded_channel();
                (sender, ShardInbox(receiver))
            })
            .unzip();
        let writer = Self {
            shards: senders,
            next: AtomicUsize::new(0),
        };
        (writer, inboxes)
    }

    fn join(&self, client: Client) {
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        // The shards stop only at shutdown, when the client's feed would end it anyway.
        let _ = self.shards[shard].send(client);
    }
}

/// Serves the stream of `feed` on `socket`, whose response head has been written.
pub fn serve(socket: TcpStream, feed: Feed, state: SharedState) {
    let client = Client {
        socket,
        feed,
        unsent: Vec::new(),
        _gauge: ConnectionGauge::open(&state, TRANSPORT),
    };
    tokio::spawn(catch_up(client, state));
}

pub struct Client {
    socket: TcpStream,
    feed: Feed,
    /// Bytes meant for the client that its socket did not take yet.
    unsent: Vec<u8>,
    _gauge: ConnectionGauge,
}

/// Writes what the client missed (and, at first, the `recovered` event), then hands the
/// client to a shard; also how a live client catches up after the fan-out resynchronizes.
async fn catch_up(mut client: Client, state: SharedState) {
    let counters = Counters::new(&state.metrics);
    let mut out = std::mem::take(&mut client.unsent);
    loop {
        let (frame, more) = match client.feed.try_next() {
            Step::Idle => break,
            Step::ReadLog => {
                if !write_out(&mut client, &mut out, &state, &counters).await {
                    return;
                }
                match client.feed.read_log().await {
                    Ok(()) => continue,
                    Err(error) => sse::frame(Err(error), client.feed.last_sequence(), &counters),
                }
            }
            Step::Ready(delivery) => {
                sse::frame(Ok(delivery), client.feed.last_sequence(), &counters)
            }
        };
        push_chunk(&mut out, &frame);
        if !more {
            out.extend_from_slice(LAST_CHUNK);
            write_out(&mut client, &mut out, &state, &counters).await;
            return;
        }
        if out.len() >= CATCH_UP_WRITE && !write_out(&mut client, &mut out, &state, &counters).await
        {
            return;
        }
    }
    if write_out(&mut client, &mut out, &state, &counters).await {
        state.sse_writer.join(client);
    }
}

/// Writes `out` to a catching-up client; false if the client is gone, was cut as too slow,
/// or did not take it within a grace period after shutdown.
async fn write_out(
    client: &mut Client,
    out: &mut Vec<u8>,
    state: &SharedState,
    counters: &Counters,
) -> bool {
    let written = tokio::select! {
        written = client.socket.write_all(out) => written.is_ok(),
        () = client.feed.fell_behind() => {
            counters.slow_consumers.inc();
            false
        }
        () = async {
            state.shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => false,
    };
    out.clear();
    written
}

/// Appends `frame` as one chunk of a chunked body.
fn push_chunk(out: &mut Vec<u8>, frame: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", frame.len()).as_bytes());
    out.extend_from_slice(frame);
    out.extend_from_slice(b"\r\n");
}

fn chunk(frame: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(frame.len() + 12);
    push_chunk(&mut out, frame);
    out.into()
}

/// Clients whose sockets are ready, named by the wakers the shard gave their sockets.
#[derive(Default)]
struct Ready {
    clients: Mutex<Vec<u64>>,
    shard: AtomicWaker,
}

impl Ready {
    fn poll_take(&self, cx: &Context<'_>) -> Poll<Vec<u64>> {
        self.shard.register(cx.waker());
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(std::mem::take(&mut *clients))
        }
    }
}

/// A client's socket waker: records the client as ready and wakes its shard.
struct ClientWaker {
    id: u64,
    ready: Arc<Ready>,
}

impl Wake for ClientWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.id);
        self.ready.shard.wake();
    }
}

struct Member {
    client: Client,
    waker: Waker,
}

/// What becomes of a client after the shard served it.
enum Verdict {
    Stay,
    Leave,
    CatchUp,
}

struct Shard {
    state: SharedState,
    members: HashMap<u64, Member>,
    ready: Arc<Ready>,
    next_id: u64,
    counters: Counters,
    /// Each event's chunk, built once per round for every client that gets it.
    chunks: HashMap<i64, Bytes>,
}

/// Until shutdown: writes the fan-out's items to the clients that join through `inbox`.
pub async fn run_shard(state: SharedState, inbox: ShardInbox) {
    let ShardInbox(mut inbox) = inbox;
    let mut fanout = state.fanout.subscribe();
    let ready = Arc::new(Ready::default());
    let mut shard = Shard {
        counters: Counters::new(&state.metrics),
        state: state.clone(),
        members: HashMap::new(),
        ready: ready.clone(),
        next_id: 0,
        chunks: HashMap::new(),
    };
    loop {
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => break,
            joined = inbox.recv() => match joined {
                Some(client) => shard.add(client),
                None => break,
            },
            item = fanout.recv() => {
                if matches!(item, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    break;
                }
                // One round serves every item that is waiting.
                while fanout.try_recv().is_ok() {}
                shard.serve_all().await;
            }
            clients = std::future::poll_fn(|cx| ready.poll_take(cx)) => shard.serve_ready(clients),
        }
    }
    // Every feed now yields its `shutdown` event.
    shard.serve_all().await;
}

impl Shard {
    fn add(&mut self, client: Client) {
        let id = self.next_id;
        self.next_id += 1;
        let waker = Waker::from(Arc::new(ClientWaker {
            id,
            ready: self.ready.clone(),
        }));
        self.members.insert(id, Member { client, waker });
        self.serve_ready(vec![id]);
    }

    /// Serves every client, a slice at a time: between slices the rest of the process runs
    /// (a round to 10,000 clients takes tens of milliseconds), and a client served later in
    /// the round gets what was published meanwhile in the same write.
    async fn serve_all(&mut self) {
        self.chunks.clear();
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for slice in ids.chunks(ROUND_SLICE) {
            let mut leaving = Vec::new();
            for id in slice {
                let Some(member) = self.members.get_mut(id) else {
                    continue;
                };
                match serve_member(member, &mut self.chunks, &self.counters) {
                    Verdict::Stay => {}
                    verdict => leaving.push((*id, verdict)),
                }
            }
            self.settle(leaving);
            tokio::task::yield_now().await;
        }
    }

    fn serve_ready(&mut self, mut clients: Vec<u64>) {
        self.chunks.clear();
        clients.sort_unstable();
        clients.dedup();
        let mut leaving = Vec::new();
        for id in clients {
            let Some(member) = self.members.get_mut(&id) else {
                continue;
            };
            let verdict = if hung_up(member) {
                Verdict::Leave
            } else {
                serve_member(member, &mut self.chunks, &self.counters)
            };
            if !matches!(verdict, Verdict::Stay) {
                leaving.push((id, verdict));
            }
        }
        self.settle(leaving);
    }

    fn settle(&mut self, leaving: Vec<(u64, Verdict)>) {
        for (id, verdict) in leaving {
            let Some(member) = self.members.remove(&id) else {
                continue;
            };
            if matches!(verdict, Verdict::CatchUp) {
                tokio::spawn(catch_up(member.client, self.state.clone()));
            }
        }
    }
}

/// Whether the client closed its connection; reads and drops anything it sent, and asks to
/// be woken when it sends more.
fn hung_up(member: &mut Member) -> bool {
    let socket = &member.client.socket;
    let mut cx = Context::from_waker(&member.waker);
    let mut scratch = [0; 256];
    loop {
        match socket.poll_read_ready(&mut cx) {
            Poll::Pending => return false,
            Poll::Ready(Err(_)) => return true,
            Poll::Ready(Ok(())) => match socket.try_read(&mut scratch) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return true,
            },
        }
    }
}

/// Writes what is ready for one client.
fn serve_member(
    member: &mut Member,
    chunks: &mut HashMap<i64, Bytes>,
    counters: &Counters,
) -> Verdict {
    let Member { client, waker } = member;
    let mut cx = Context::from_waker(waker);
    match flush(client, &mut cx) {
        Ok(true) => {}
        Ok(false) if client.feed.is_behind() => {
            counters.slow_consumers.inc();
            tracing::info!("SSE client too slow; cutting its connection");
            return Verdict::Leave;
        }
        Ok(false) => return Verdict::Stay,
        Err(_) => return Verdict::Leave,
    }
    let mut frames: Vec<Bytes> = Vec::new();
    let mut verdict = Verdict::Stay;
    loop {
        match client.feed.try_next() {
            Step::Idle => break,
            Step::ReadLog => {
                verdict = Verdict::CatchUp;
                break;
            }
            Step::Ready(Delivery::Event(event)) => {
                counters.deliveries.inc();
                let chunk = chunks
                    .entry(event.event.sequence)
                    .or_insert_with(|| chunk(&sse::event_frame(&event)));
                frames.push(chunk.clone());
            }
            Step::Ready(delivery) => {
                let (frame, more) = sse::frame(Ok(delivery), client.feed.last_sequence(), counters);
                frames.push(chunk(&frame));
                if !more {
                    frames.push(Bytes::from_static(LAST_CHUNK));
                    verdict = Verdict::Leave;
                    break;
                }
            }
        }
    }
    if frames.is_empty() {
        return verdict;
    }
    match write_frames(client, &frames).and_then(|()| flush(client, &mut cx)) {
        Ok(_) => verdict,
        Err(_) => Verdict::Leave,
    }
}

/// Writes `frames` to a client with nothing unsent; keeps what the socket does not take.
fn write_frames(client: &mut Client, frames: &[Bytes]) -> io::Result<()> {
    let written = match frames {
        [frame] => client.socket.try_write(frame),
        _ => {
            let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
            client.socket.try_write_vectored(&slices)
        }
    };
    let mut skip = match written {
        Ok(written) => written,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(error),
    };
    for frame in frames {
        if skip >= frame.len() {
            skip -= frame.len();
        } else {
            client.unsent.extend_from_slice(&frame[skip..]);
            skip = 0;
        }
    }
    Ok(())
}

/// Writes what is unsent: true once nothing is, false (with a wake-up asked for when the
/// socket drains) while the socket is full.
fn flush(client: &mut Client, cx: &mut Context<'_>) -> io::Result<bool> {
    while !client.unsent.is_empty() {
        match client.socket.try_write(&client.unsent) {
            Ok(written) => {
                client.unsent.drain(..written);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                match client.socket.poll_write_ready(cx) {
                    Poll::Pending => return Ok(false),
                    Poll::Ready(ready) => ready?,
                }
            }
            Err(error) => return Err(error),
        }
    }
    // A burst's buffer is not kept for the hours a stream may stay quiet.
    client.unsent = Vec::new();
    Ok(true)
}
