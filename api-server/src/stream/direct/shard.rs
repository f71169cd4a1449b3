//! A shard: one task that serves its clients' streams on their sockets. For every item the
//! fan-out sends, it takes each client's ready deliveries and writes them straight to the
//! socket, with the bytes of each event built once per round. A socket that takes only part of
//! a write keeps the rest; that client gets nothing more until the socket drains, and is cut
//! as a slow consumer once more than the stream buffer behind. The shard learns that a
//! socket drained, or that its client sent something (a WebSocket ping, a hang-up), through a
//! waker that names the client.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use axum::body::Bytes;
use futures::task::AtomicWaker;
use herald_core::fanout::{Broadcast, FanoutItem};
use stream_protocols::websocket;
use tokio::sync::broadcast::{self, error::RecvError};

use super::protocol::{Counters, Protocol};
use super::{Client, DirectStreams, ShardInbox, catch_up};
use crate::stream::replay::{Delivery, Step};

/// Reads of a client's socket per turn (of 512 bytes each).
const MAX_READS: usize = 16;
/// Clients served between two yields to the rest of the process.
const ROUND_SLICE: usize = 128;

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

/// An event's bytes, per protocol.
#[derive(PartialEq, Eq, Hash)]
struct EventKey {
    protocol: std::mem::Discriminant<Protocol>,
    sequence: i64,
}

/// `event` framed for `protocol`, built once per round for all the clients of that protocol.
fn event_bytes(
    events: &mut HashMap<EventKey, Bytes>,
    protocol: &Protocol,
    event: &Broadcast,
) -> Bytes {
    let key = EventKey {
        protocol: std::mem::discriminant(protocol),
        sequence: event.event.sequence,
    };
    events
        .entry(key)
        .or_insert_with(|| protocol.event(event))
        .clone()
}

struct Shard {
    streams: Arc<DirectStreams>,
    members: HashMap<u64, Member>,
    ready: Arc<Ready>,
    next_id: u64,
    counters: Counters,
    round: Round,
}

/// What serving clients reuses from one client to the next.
#[derive(Default)]
struct Round {
    /// Each event's bytes, built once per round for every client that gets it.
    events: HashMap<EventKey, Bytes>,
    /// The frames for the client being served, gathered for one write.
    frames: Vec<Bytes>,
}

/// Until shutdown: writes the fan-out's items to the clients that join through `inbox`.
pub async fn run_shard(streams: Arc<DirectStreams>, inbox: ShardInbox) {
    let ShardInbox(mut inbox) = inbox;
    // Subscribed only while the shard has clients: a wake-up per event for nobody would
    // cost the rest of the process (a few % of POST throughput).
    let mut fanout: Option<broadcast::Receiver<FanoutItem>> = None;
    let ready = Arc::new(Ready::default());
    let mut shard = Shard {
        counters: Counters::new(&streams.open),
        streams: streams.clone(),
        members: HashMap::new(),
        ready: ready.clone(),
        next_id: 0,
        round: Round::default(),
    };
    loop {
        tokio::select! {
            biased;
            () = streams.shutdown.cancelled() => break,
            joined = inbox.recv() => match joined {
                Some(client) => {
                    // Before the client's first round, so no later item goes unnoticed;
                    // what came before is in the client's own feed.
                    fanout.get_or_insert_with(|| streams.fanout.subscribe());
                    shard.add(client);
                }
                None => break,
            },
            item = next_item(&mut fanout) => {
                if matches!(item, Err(RecvError::Closed)) {
                    break;
                }
                if let Some(items) = &mut fanout {
                    // One round serves every item that is waiting.
                    while items.try_recv().is_ok() {}
                }
                shard.serve_all().await;
            }
            clients = std::future::poll_fn(|cx| ready.poll_take(cx)) => shard.serve_ready(clients),
        }
        if shard.members.is_empty() {
            fanout = None;
        }
    }
    // Every feed now yields its `shutdown` event.
    shard.serve_all().await;
}

/// The next fan-out item; never, without a subscription.
async fn next_item(
    fanout: &mut Option<broadcast::Receiver<FanoutItem>>,
) -> Result<FanoutItem, RecvError> {
    match fanout {
        Some(items) => items.recv().await,
        None => std::future::pending().await,
    }
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
        self.round.events.clear();
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for slice in ids.chunks(ROUND_SLICE) {
            let mut leaving = Vec::new();
            for id in slice {
                let Some(member) = self.members.get_mut(id) else {
                    continue;
                };
                match serve_member(member, &mut self.round, &self.counters) {
                    Verdict::Stay => {}
                    verdict => leaving.push((*id, verdict)),
                }
            }
            self.settle(leaving);
            tokio::task::yield_now().await;
        }
    }

    fn serve_ready(&mut self, mut clients: Vec<u64>) {
        self.round.events.clear();
        clients.sort_unstable();
        clients.dedup();
        let mut leaving = Vec::new();
        for id in clients {
            let Some(member) = self.members.get_mut(&id) else {
                continue;
            };
            let verdict = match read_client(member) {
                Verdict::Stay => serve_member(member, &mut self.round, &self.counters),
                verdict => verdict,
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
                tokio::spawn(catch_up(member.client, self.streams.clone()));
            }
        }
    }
}

/// Reads what the client sent: answers WebSocket pings, and tells whether the client closed
/// the connection. Asks to be woken when it sends more.
fn read_client(member: &mut Member) -> Verdict {
    let Member { client, waker } = member;
    let mut cx = Context::from_waker(waker);
    let mut scratch = [0; 512];
    let mut replies = Vec::new();
    let mut reads = 0;
    let verdict = loop {
        if reads == MAX_READS {
            // A client that keeps sending must not hold up the others: look again next turn.
            waker.wake_by_ref();
            break Verdict::Stay;
        }
        reads += 1;
        match client.socket.poll_read_ready(&mut cx) {
            Poll::Pending => break Verdict::Stay,
            Poll::Ready(Err(_)) => break Verdict::Leave,
            Poll::Ready(Ok(())) => match client.socket.try_read(&mut scratch) {
                Ok(0) => break Verdict::Leave,
                Ok(read) => {
                    if let websocket::Read::Closing(close) =
                        client.protocol.read(&scratch[..read], &mut replies)
                    {
                        replies.push(close);
                        break Verdict::Leave;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break Verdict::Leave,
            },
        }
    };
    if replies.is_empty() {
        return verdict;
    }
    match send(client, &replies, &mut cx) {
        Ok(()) => verdict,
        Err(_) => Verdict::Leave,
    }
}

/// Writes what is ready for one client.
fn serve_member(member: &mut Member, round: &mut Round, counters: &Counters) -> Verdict {
    let Member { client, waker } = member;
    let mut cx = Context::from_waker(waker);
    let counters = client.protocol.counters(counters);
    match flush(client, &mut cx) {
        Ok(true) => {}
        Ok(false) if client.feed.is_behind() => {
            counters.slow_consumers.inc();
            tracing::info!(
                transport = client.protocol.transport(),
                "stream client too slow; cutting its connection"
            );
            return Verdict::Leave;
        }
        Ok(false) => return Verdict::Stay,
        Err(_) => return Verdict::Leave,
    }
    let Round { events, frames } = round;
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
                frames.push(event_bytes(events, &client.protocol, &event));
            }
            Step::Ready(delivery) => {
                if matches!(delivery, Delivery::SlowConsumer) {
                    counters.slow_consumers.inc();
                }
                let (bytes, more) = client
                    .protocol
                    .other(Ok(delivery), client.feed.last_sequence());
                frames.push(bytes);
                if !more {
                    verdict = Verdict::Leave;
                    break;
                }
            }
        }
    }
    if frames.is_empty() {
        return verdict;
    }
    let sent = send(client, frames, &mut cx);
    frames.clear();
    match sent {
        Ok(()) => verdict,
        Err(_) => Verdict::Leave,
    }
}

/// Sends `frames` after whatever is unsent, keeping what the socket does not take.
fn send(client: &mut Client, frames: &[Bytes], cx: &mut Context<'_>) -> io::Result<()> {
    let mut skip = if client.unsent.is_empty() {
        let written = match frames {
            [frame] => client.socket.try_write(frame),
            _ => {
                let joined = frames.concat();
                client.socket.try_write(&joined)
            }
        };
        match written {
            Ok(written) => written,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            Err(error) => return Err(error),
        }
    } else {
        0
    };
    for frame in frames {
        if skip >= frame.len() {
            skip -= frame.len();
        } else {
            client.unsent.extend_from_slice(&frame[skip..]);
            skip = 0;
        }
    }
    flush(client, cx).map(|_| ())
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

#[cfg(test)]
mod tests {
    use herald_core::event::Event;

    use super::*;
    use crate::stream::socketio;

    #[test]
    fn each_protocol_gets_the_event_in_its_own_framing() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "01a21d07-0877-7023-ab2f-0af2a022e88c",
            "sequence": 7,
            "type": "notification.created",
            "notificationId": "01a21d07-0877-7023-ab2f-0af2a022e88d",
            "occurredAt": "2026-11-27T12:00:00Z",
            "notification": {
                "id": "01a21d07-0877-7023-ab2f-0af2a022e88d",
                "sequence": 7,
                "message": "hello",
                "type": "info",
                "status": "pending",
                "createdAt": "2026-11-27T12:00:00Z",
                "updatedAt": "2026-11-27T12:00:00Z"
            }
        }))
        .expect("an event");
        let event = Broadcast::new(event);
        let protocols = [
            Protocol::Sse,
            Protocol::WebSocket(websocket::Inbound::default()),
            Protocol::SocketIo(socketio::Session::new()),
        ];
        // A shard's clients of every protocol, served in any order, within one round.
        let mut events = HashMap::new();
        for protocol in protocols.iter().chain(protocols.iter().rev()) {
            assert_eq!(
                event_bytes(&mut events, protocol, &event),
                protocol.event(&event),
                "{}",
                protocol.transport()
            );
        }
        assert_eq!(events.len(), protocols.len());
    }
}
