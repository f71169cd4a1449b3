//! Engine.IO 4 long-polling, and the upgrade from it to WebSocket: how `socket.io-client`
//! connects by default.
//!
//! A session lives in a task of its own while the client polls: `GET` takes the packets
//! queued for it (joined by the record separator, waiting until there are some), `POST`
//! brings the client's. Once the client upgrades (`2probe`, `3probe`, then `5` on the
//! WebSocket), the session's stream moves to a direct-stream shard, where it is served as if
//! the client had opened the WebSocket straight away ([`engine`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use stream_protocols::engineio::{
    self, Packet, PacketType, Polling, Probe, ProbeStep, RequestError, Taken,
};
use stream_protocols::socketio;
use stream_protocols::websocket::{self, Read};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

use super::engine;
use super::received::{Ending, Received, pump, receive};
use super::session::{self, TRANSPORT};
use crate::connection::Peer;
use crate::stream::direct::{self, Protocol};
use crate::stream::hub::Hub;
use crate::stream::replay::{Delivery, Feed};
use crate::stream::ws;

/// How long the client has from the WebSocket handshake to the end of the upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// POSTs a session takes before the next waits for it to catch up.
const COMMANDS: usize = 16;

/// The long-polling sessions of this server, by id.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Arc<Shared>>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Shared>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, sid: &str) -> Option<Arc<Shared>> {
        self.lock().get(sid).cloned()
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }
}

/// What the request handlers and the session's task share.
struct Shared {
    outbox: Mutex<Polling>,
    /// Packets were queued, or the session closed.
    queued: Notify,
    /// A poll took the queued packets.
    taken: Notify,
    commands: mpsc::Sender<Command>,
}

enum Command {
    /// What the client POSTed.
    Packets(Vec<String>),
    /// The client completed the upgrade: hand the session over.
    Upgrade(oneshot::Sender<Handover>),
}

/// A session on its way to a WebSocket.
struct Handover {
    engine: session::Session,
    /// `None` when the client has not connected to the namespace yet.
    feed: Option<Feed>,
    /// Packets no poll took.
    packets: Vec<String>,
    /// The session ended: after the packets, the connection closes.
    closed: bool,
}

impl Shared {
    fn outbox(&self) -> MutexGuard<'_, Polling> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn queue(&self, packets: impl IntoIterator<Item = String>) {
        self.outbox().queue(packets);
        self.queued.notify_one();
    }
}

/// `GET` without `sid`: opens a session.
pub fn handshake(hub: &Arc<Hub>, sessions: &Arc<Sessions>, address: Option<IpAddr>) -> Response {
    let sid = session::new_id();
    let (commands, received) = mpsc::channel(COMMANDS);
    let shared = Arc::new(Shared {
        outbox: Mutex::default(),
        queued: Notify::new(),
        taken: Notify::new(),
        commands,
    });
    sessions.lock().insert(sid.clone(), shared.clone());
    let open = session::open_packet(hub.keepalive, &sid, true);
    let session = Run {
        sid,
        shared,
        hub: hub.clone(),
        sessions: sessions.clone(),
        address,
    };
    tokio::spawn(run(session, received));
    text_response(open)
}

/// `GET` with `sid`: the packets queued for the client, once there are some.
pub async fn poll(hub: &Arc<Hub>, sessions: &Sessions, sid: &str) -> Response {
    let Some(shared) = sessions.get(sid) else {
        return unknown_session();
    };
    if shared.outbox().begin_poll().is_err() {
        let _ = shared
            .commands
            .try_send(Command::Packets(vec![close_packet()]));
        return engine_error(RequestError::BadRequest);
    }
    let _polling = Poll(&shared);
    // A ping comes every keep-alive interval: a poll waits no longer than two.
    let give_up = Instant::now() + hub.keepalive * 2;
    loop {
        let mut queued = pin!(shared.queued.notified());
        queued.as_mut().enable();
        let taken = shared.outbox().take();
        match taken {
            Taken::Payload(body) => {
                shared.taken.notify_one();
                return text_response(body);
            }
            Taken::Ended => return text_response(noop_packet()),
            Taken::Nothing => {}
        }
        tokio::select! {
            () = queued => {}
            () = tokio::time::sleep_until(give_up) => return text_response(noop_packet()),
        }
    }
}

/// Ends the poll however it ends (the client may hang up).
struct Poll<'a>(&'a Shared);

impl Drop for Poll<'_> {
    fn drop(&mut self) {
        self.0.outbox().end_poll();
    }
}

/// `POST` with `sid`: the client's packets.
pub async fn post(sessions: &Sessions, sid: &str, body: Body) -> Response {
    let Some(shared) = sessions.get(sid) else {
        return unknown_session();
    };
    let Ok(bytes) = axum::body::to_bytes(body, session::MAX_PAYLOAD).await else {
        let message = format!("a POST carries at most {} bytes", session::MAX_PAYLOAD);
        let code = RequestError::BadRequest.code();
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(serde_json::json!({ "code": code, "message": message })),
        )
            .into_response();
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return engine_error(RequestError::BadRequest);
    };
    let packets = engineio::split_payload(text).map(str::to_owned).collect();
    if shared
        .commands
        .send(Command::Packets(packets))
        .await
        .is_err()
    {
        return unknown_session();
    }
    ([(header::CONTENT_TYPE, "text/html")], "ok").into_response()
}

/// A WebSocket with `sid`: the upgrade of that session.
pub fn upgrade(
    hub: &Arc<Hub>,
    sessions: &Arc<Sessions>,
    sid: &str,
    peer: Peer,
    mut request: Request,
) -> Response {
    let Some(shared) = sessions.get(sid) else {
        return unknown_session();
    };
    let (accept, upgraded) = match ws::take_upgrade(&mut request) {
        Ok(taken) => taken,
        Err(error) => return error.into_response(),
    };
    if !shared.outbox().begin_upgrade() {
        return engine_error(RequestError::BadRequest);
    }
    let hub = hub.clone();
    tokio::spawn(async move {
        match peer.detach.after_upgrade(upgraded).await {
            Some((socket, input)) => probe(socket, input, shared, hub, peer.address).await,
            None => shared.outbox().abort_upgrade(),
        }
    });
    ws::switching_protocols(accept)
}

/// `2probe` -> `3probe`, then `5`: the session moves to the WebSocket.
async fn probe(
    mut socket: TcpStream,
    mut input: Vec<u8>,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    address: Option<IpAddr>,
) {
    let mut inbound = websocket::Inbound::keeping_text(session::MAX_CLIENT_MESSAGE);
    let deadline = Instant::now() + UPGRADE_TIMEOUT;
    let mut upgrade = Probe::default();
    let after = loop {
        let mut replies = Vec::new();
        let read = inbound.push(&input, &mut replies);
        let mut texts = inbound.take_texts().into_iter();
        let mut upgraded = false;
        for message in texts.by_ref() {
            let Ok(text) = std::str::from_utf8(&message) else {
                continue;
            };
            match upgrade.receive(text) {
                ProbeStep::Answer { websocket, poll } => {
                    replies.push(session::text(&websocket));
                    // Ends the pending poll, so the client can pause polling and upgrade.
                    shared.queue([poll]);
                }
                ProbeStep::Upgraded => {
                    upgraded = true;
                    break;
                }
                ProbeStep::Nothing => {}
            }
        }
        let closing = matches!(read, Read::Closing(_));
        if let Read::Closing(close) = read {
            replies.push(close);
        }
        if socket.write_all(&replies.concat()).await.is_err() || closing {
            shared.outbox().abort_upgrade();
            return;
        }
        if upgraded {
            break texts.collect::<Vec<_>>();
        }
        input.clear();
        let read = tokio::select! {
            read = socket.read_buf(&mut input) => read,
            () = tokio::time::sleep_until(deadline) => Ok(0),
        };
        if !matches!(read, Ok(1..)) {
            shared.outbox().abort_upgrade();
            return;
        }
    };
    let (reply, handover) = oneshot::channel();
    if shared.commands.send(Command::Upgrade(reply)).await.is_err() {
        return;
    }
    let Ok(Handover {
        engine,
        feed,
        packets,
        closed,
    }) = handover.await
    else {
        return;
    };
    if closed {
        let mut frames: Vec<Bytes> = packets.iter().map(|p| session::text(p)).collect();
        frames.push(websocket::close(websocket::close_code::NORMAL, ""));
        let _ = socket.write_all(&frames.concat()).await;
        return;
    }
    // What the client sent after `5` is read as if it came now.
    inbound.put_back(after);
    let session = engine.upgraded(inbound);
    let first: Vec<Bytes> = packets.iter().map(|p| session::text(p)).collect();
    match feed {
        Some(feed) => direct::serve(
            socket,
            Protocol::SocketIo(session),
            first.concat(),
            feed,
            &hub.direct,
        ),
        None => engine::connect(socket, Vec::new(), hub, session, first, address).await,
    }
}

/// What a session's task serves.
struct Run {
    sid: String,
    shared: Arc<Shared>,
    hub: Arc<Hub>,
    sessions: Arc<Sessions>,
    /// The client's, from the handshake.
    address: Option<IpAddr>,
}

/// A session, from the handshake until it closes or moves to a WebSocket.
async fn run(session: Run, mut commands: mpsc::Receiver<Command>) {
    let Run {
        sid,
        shared,
        hub,
        sessions,
        address,
    } = session;
    let mut engine = session::Session::new();
    let mut feed: Option<Feed> = None;
    let mut gauge = None;
    let counters = hub.open.counters(TRANSPORT);
    let connect_by = Instant::now() + session::CONNECT_TIMEOUT;
    let ending = loop {
        // The feed is read only while the client takes what it gets.
        let room = shared.outbox().queued() < hub.feeds.buffer.max(1);
        let delivery = tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Packets(packets)) => {
                    let mut replies = Vec::new();
                    let mut ending = None;
                    for packet in packets {
                        match receive(&packet, &mut engine, &mut feed, &hub, address).await {
                            Received::Reply(reply) => replies.push(reply),
                            Received::Connected(reply) => {
                                gauge = Some(hub.open.open(TRANSPORT));
                                replies.push(reply);
                            }
                            Received::End(end) => {
                                ending = Some(end);
                                break;
                            }
                            Received::Nothing => {}
                        }
                    }
                    shared.queue(replies);
                    match ending {
                        Some(Ending::Closing(packets)) => break Ending::Closing(packets),
                        Some(Ending::Closed) => break Ending::Closed,
                        None => continue,
                    }
                }
                Some(Command::Upgrade(reply)) => {
                    sessions.remove(&sid);
                    let packets = shared.outbox().close();
                    shared.queued.notify_one();
                    let _ = reply.send(Handover {
                        engine,
                        feed,
                        packets,
                        closed: false,
                    });
                    return;
                }
                None => break Ending::Closed,
            },
            delivery = pump(&mut feed, room), if feed.is_some() => delivery,
            () = shared.taken.notified(), if !room => continue,
            () = tokio::time::sleep_until(connect_by), if feed.is_none() => break Ending::Closing(Vec::new()),
            () = hub.feeds.shutdown.cancelled(), if feed.is_none() => break Ending::Closing(Vec::new()),
        };
        let last_sequence = feed.as_ref().map_or(0, Feed::last_sequence);
        match &delivery {
            Ok(Delivery::Event(_)) => counters.deliveries.inc(),
            Ok(Delivery::SlowConsumer) => counters.slow_consumers.inc(),
            _ => {}
        }
        let reaction = engine.react(delivery, last_sequence);
        if reaction.close.is_some() {
            break Ending::Closing(reaction.packets);
        }
        shared.queue(reaction.packets);
    };
    // The stream is over; a shutdown need not wait for the last poll.
    drop(gauge);
    if let Ending::Closing(mut packets) = ending {
        // After a disconnect (`41`) the client closes by itself.
        let disconnect = socketio::Packet::new(socketio::PacketType::Disconnect, None).to_message();
        if !packets.contains(&disconnect) {
            packets.push(close_packet());
        }
        shared.queue(packets);
        // The client's next poll takes them, or, if it is upgrading, its WebSocket. A client
        // that does neither is gone anyway.
        let give_up = tokio::time::sleep(hub.keepalive);
        let mut give_up = pin!(give_up);
        // `taken` may hold a permit from an earlier poll: look at the outbox itself.
        while shared.outbox().queued() > 0 {
            tokio::select! {
                () = shared.taken.notified() => {}
                command = commands.recv() => match command {
                    Some(Command::Upgrade(reply)) => {
                        let packets = shared.outbox().close();
                        let _ = reply.send(Handover { engine, feed: None, packets, closed: true });
                        break;
                    }
                    Some(Command::Packets(_)) => {}
                    None => break,
                },
                () = &mut give_up => break,
            }
        }
    }
    shared.outbox().close();
    shared.queued.notify_one();
    sessions.remove(&sid);
}

fn text_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

/// Engine.IO's error answer: `{"code", "message"}` with a 400.
pub fn engine_error(error: RequestError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({ "code": error.code(), "message": error.message() })),
    )
        .into_response()
}

fn unknown_session() -> Response {
    engine_error(RequestError::UnknownSession)
}

/// Engine.IO's close packet.
fn close_packet() -> String {
    Packet::new(PacketType::Close, "").encode()
}

/// Engine.IO's noop: what a poll gets when there is nothing for it.
fn noop_packet() -> String {
    Packet::new(PacketType::Noop, "").encode()
}
