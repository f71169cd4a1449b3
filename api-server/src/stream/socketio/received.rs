//! What a long-polling session does with each packet its client POSTs: the namespace connect
//! (authenticated through `auth.token`), a disconnect, or nothing; and how it reads its feed.

use std::net::IpAddr;
use std::sync::Arc;

use herald_core::db::DbError;
use stream_protocols::engineio;

use super::auth::admit;
use super::session::{self, Before};
use crate::stream::hub::Hub;
use crate::stream::replay::{Delivery, Feed};

/// How a session ended.
pub(super) enum Ending {
    /// With these packets (then Engine.IO's close, `1`).
    Closing(Vec<String>),
    /// The client closed it.
    Closed,
}

pub(super) enum Received {
    Reply(String),
    /// The answer to the namespace connect: the stream has begun.
    Connected(String),
    End(Ending),
    Nothing,
}

/// One packet the client POSTed.
pub(super) async fn receive(
    packet: &str,
    engine: &mut session::Session,
    feed: &mut Option<Feed>,
    hub: &Arc<Hub>,
    address: Option<IpAddr>,
) -> Received {
    let message = match engine.receive(packet) {
        engineio::Received::Message(message) => message,
        engineio::Received::Close => return Received::End(Ending::Closed),
        engineio::Received::Nothing => return Received::Nothing,
    };
    if session::is_disconnect(message) {
        return Received::End(Ending::Closed);
    }
    let connected = feed.is_some();
    match session::before_connect(packet.as_bytes()) {
        Before::Connect(Err(refusal)) => Received::Reply(refusal),
        Before::Connect(Ok(_)) if connected => Received::Nothing,
        Before::Connect(Ok(resume)) => {
            let resume_from = resume.last_sequence();
            let audience = match admit(hub, &resume, address).await {
                Ok(audience) => audience,
                Err(refusal) => return Received::Reply(refusal),
            };
            match Feed::open(&hub.feeds, audience, resume.start).await {
                Ok(opened) => {
                    *feed = Some(opened);
                    Received::Connected(session::connected_packet())
                }
                Err(error) => {
                    // Where the client asked to resume is still where it should.
                    let mut packets = vec![session::connected_packet()];
                    packets.extend(engine.react(Err(error), resume_from).packets);
                    Received::End(Ending::Closing(packets))
                }
            }
        }
        Before::Close => Received::End(Ending::Closed),
        Before::Other => Received::Nothing,
    }
}

/// The feed's next delivery while the outbox has `room`; otherwise, once the client is too
/// far behind, that it is a slow consumer.
pub(super) async fn pump(feed: &mut Option<Feed>, room: bool) -> Result<Delivery, DbError> {
    match feed {
        Some(feed) if room => feed.next().await,
        Some(feed) => {
            feed.fell_behind().await;
            Ok(Delivery::SlowConsumer)
        }
        None => std::future::pending().await,
    }
}
