//! Socket.IO clients on a WebSocket, served on the direct-stream shards like plain WebSocket
//! clients: those that open it straight away (`transports: ["websocket"]`), and those that
//! upgrade to it from long-polling ([`polling`](super::polling)), which then go on from
//! step 2 or 3. On namespace `/`:
//!
//! 1. The handshake is answered as on `/api/ws`. The first frame is Engine.IO's open packet,
//!    `0{"sid", "upgrades": [], "pingInterval", "pingTimeout", "maxPayload"}`.
//! 2. The client connects to `/` with `40` and its `auth`. The answer is `40{"sid"}`, or
//!    `44{"message"}` for bad `auth` or another namespace; the client may try again until
//!    the connect timeout, as with the Socket.IO server.
//! 3. Events go out as `42["name", args...]`. Every keep-alive interval brings a ping `2`,
//!    which the client answers `3`; a client that leaves two pings unanswered is gone.
//! 4. The client leaves with `41` (disconnect) or `1` (close). What else it sends is skipped.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use stream_protocols::websocket::Read;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::auth::admit;
use super::session::{
    Before, CONNECT_TIMEOUT, Session, before_connect, connected_packet, new_id, open_packet, text,
};
use crate::connection::Peer;
use crate::stream::direct::{self, Protocol};
use crate::stream::hub::Hub;
use crate::stream::replay::Feed;
use crate::stream::ws;

/// Answers a request that opens an Engine.IO 4 WebSocket without a long-polling session.
pub fn accept(hub: &Arc<Hub>, peer: Peer, mut request: Request) -> Response {
    let (accept, upgrade) = match ws::take_upgrade(&mut request) {
        Ok(taken) => taken,
        Err(error) => return error.into_response(),
    };
    let hub = hub.clone();
    tokio::spawn(async move {
        if let Some((socket, read)) = peer.detach.after_upgrade(upgrade).await {
            let open = text(&open_packet(hub.keepalive, &new_id(), false));
            connect(socket, read, hub, Session::new(), vec![open], peer.address).await;
        }
    });
    ws::switching_protocols(accept)
}

/// Until the client connects to the namespace: then its stream is served on a shard. `out`
/// is written first.
pub(super) async fn connect(
    mut socket: TcpStream,
    mut input: Vec<u8>,
    hub: Arc<Hub>,
    mut session: Session,
    mut out: Vec<Bytes>,
    address: Option<IpAddr>,
) {
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    let (resume, audience) = loop {
        let read = session.inbound.push(&input, &mut out);
        if let Read::Closing(close) = read {
            out.push(close);
            let _ = socket.write_all(&out.concat()).await;
            return;
        }
        let mut resume = None;
        for message in session.inbound.take_texts() {
            match before_connect(&message) {
                // A refused client may try again on this connection, with another token.
                Before::Connect(Ok(wanted)) => match admit(&hub, &wanted, address).await {
                    Ok(audience) => {
                        resume = Some((wanted, audience));
                        break;
                    }
                    Err(refusal) => out.push(text(&refusal)),
                },
                Before::Connect(Err(refusal)) => out.push(text(&refusal)),
                Before::Close => return,
                Before::Other => {}
            }
        }
        if socket.write_all(&out.concat()).await.is_err() {
            return;
        }
        out.clear();
        if let Some(admitted) = resume {
            break admitted;
        }
        input.clear();
        let read = tokio::select! {
            read = socket.read_buf(&mut input) => read,
            () = tokio::time::sleep_until(deadline) => return,
            () = hub.feeds.shutdown.cancelled() => return,
        };
        if !matches!(read, Ok(1..)) {
            return;
        }
    };
    let connected = text(&connected_packet());
    let resume_from = resume.last_sequence();
    match Feed::open(&hub.feeds, audience, resume.start).await {
        Ok(feed) => direct::serve(
            socket,
            Protocol::SocketIo(session),
            connected.to_vec(),
            feed,
            &hub.direct,
        ),
        Err(error) => {
            // Where the client asked to resume is still where it should.
            let (closing, _) = session.other(Err(error), resume_from);
            let _ = socket.write_all(&[connected, closing].concat()).await;
        }
    }
}
