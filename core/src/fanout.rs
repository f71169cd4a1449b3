//! Fan-out: every event reaches the connected clients of every api-server replica.
//!
//! Across processes the transport is Redis pub/sub (as in the seed): publishers (api-server
//! replicas, processors) PUBLISH each event as JSON on one channel and every replica relays what
//! it receives to its local subscribers. Pub/sub keeps no history, so whenever the subscription
//! (re)connects, local subscribers get [`FanoutItem::Resync`] and catch up from the event log
//! in the database; that is what makes delivery gap-free across Redis outages. In embedded mode
//! the fan-out is in-process only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use herald_runtime::backoff::Backoff;
use redis::aio::ConnectionManager;
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::event::Event;

#[derive(Debug, Clone)]
pub enum FanoutItem {
    Event(Arc<Broadcast>),
    /// Events may have been missed: catch up from the event log.
    Resync,
    /// Time for idle streams to send a keep-alive: one tick through the fan-out for every
    /// connection of this process, instead of a timer in each.
    KeepAlive,
}

/// An event on its way to many clients. The notification's JSON is written once, by the
/// first connection that sends it, and shared by all the others: with thousands of clients,
/// serializing per connection would cost more than the rest of the delivery.
#[derive(Debug)]
pub struct Broadcast {
    pub event: Event,
    notification_json: OnceLock<Box<RawValue>>,
}

impl Broadcast {
    pub fn new(event: Event) -> Self {
        Self {
            event,
            notification_json: OnceLock::new(),
        }
    }

    /// The notification after this event, as the REST API returns it.
    pub fn notification_json(&self) -> &RawValue {
        self.notification_json.get_or_init(|| {
            // Our payloads are plain data; serializing them cannot fail.
            serde_json::value::to_raw_value(&self.event.notification)
                .unwrap_or_else(|_| RawValue::NULL.to_owned())
        })
    }
}

#[derive(Clone)]
pub struct Fanout {
    local: Local,
    redis: Option<RedisSide>,
}

/// The broadcast to this process's subscribers, counting what it sent so that a subscriber's
/// lag can be read without its receiver.
#[derive(Clone)]
struct Local {
    sender: broadcast::Sender<FanoutItem>,
    sent: Arc<AtomicU64>,
}

impl Local {
    fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self {
            sender,
            sent: Arc::default(),
        }
    }

    fn send(&self, item: FanoutItem) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        // No subscriber is not an error: nobody is listening right now.
        let _ = self.sender.send(item);
    }
}

#[derive(Clone)]
struct RedisSide {
    connection: ConnectionManager,
    channel: String,
}

impl Fanout {
    /// Fan-out within this process only (embedded mode). `capacity` bounds how far a
    /// subscriber may fall behind before it is told it lagged.
    pub fn in_process(capacity: usize) -> Self {
        Self {
            local: Local::new(capacity),
            redis: None,
        }
    }

    /// Fan-out through Redis: publishes there, and (with `relay`) relays the channel to local
    /// subscribers until `shutdown`. Processors publish only, so they pass `relay: false`.
    pub async fn redis(
        url: &str,
        channel: String,
        capacity: usize,
        relay: bool,
        shutdown: CancellationToken,
    ) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client.clone()).await?;
        let local = Local::new(capacity);
        if relay {
            tokio::spawn(relay_from_redis(
                client,
                channel.clone(),
                local.clone(),
                shutdown,
            ));
        }
        Ok(Self {
            local,
            redis: Some(RedisSide {
                connection,
                channel,
            }),
        })
    }

    /// Sends an event to every replica's subscribers. In Redis mode this process's own
    /// subscribers receive it back through the channel, like everyone else's.
    pub async fn publish(&self, event: &Event) -> Result<(), FanoutError> {
        self.publish_all(std::slice::from_ref(event)).await
    }

    /// Sends several events in one round trip to Redis.
    pub async fn publish_all<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<(), FanoutError> {
        match &self.redis {
            None => {
                for event in events {
                    self.local
                        .send(FanoutItem::Event(Arc::new(Broadcast::new(event.clone()))));
                }
                Ok(())
            }
            Some(side) => {
                let mut pipe = redis::pipe();
                for event in events {
                    let payload = serde_json::to_string(event).map_err(FanoutError::Encode)?;
                    pipe.publish(&side.channel, payload).ignore();
                }
                let mut connection = side.connection.clone();
                let () = pipe.query_async(&mut connection).await?;
                Ok(())
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<FanoutItem> {
        self.local.sender.subscribe()
    }

    /// Tells this process's subscribers to send their clients a keep-alive.
    pub fn keep_alive(&self) {
        self.local.send(FanoutItem::KeepAlive);
    }

    /// Items sent to this process's subscribers so far: a subscriber that has received `n`
    /// since it subscribed at `sent() == s` is `sent() - s - n` behind.
    pub fn sent(&self) -> u64 {
        self.local.sent.load(Ordering::Relaxed)
    }

    pub fn is_redis(&self) -> bool {
        self.redis.is_some()
    }

    /// Whether the Redis side answers (always true in process), for readiness checks.
    pub async fn ping(&self) -> Result<(), FanoutError> {
        if let Some(side) = &self.redis {
            let mut connection = side.connection.clone();
            let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("publishing to Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("encoding the event: {0}")]
    Encode(serde_json::Error),
}

async fn relay_from_redis(
    client: redis::Client,
    channel: String,
    local: Local,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        let session = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            // Anything published while we were not subscribed is only in the event log.
            local.send(FanoutItem::Resync);
            tracing::info!(channel, "relaying fan-out from Redis");
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                match serde_json::from_slice::<Event>(message.get_payload_bytes()) {
                    Ok(event) => {
                        local.send(FanoutItem::Event(Arc::new(Broadcast::new(event))));
                    }
                    Err(error) => tracing::warn!(%error, "ignoring an undecodable fan-out message"),
                }
            }
            redis::RedisResult::Ok(())
        };
        let delay = tokio::select! {
            () = shutdown.cancelled() => return,
            result = session => match result {
                Ok(()) => {
                    tracing::warn!(channel, "Redis closed the fan-out subscription; resubscribing");
                    backoff.reset();
                    backoff.next_delay()
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(channel, %error, retry_in = ?delay, "fan-out subscription failed");
                    delay
                }
            },
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}
