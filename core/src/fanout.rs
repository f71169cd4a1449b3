//! Fan-out: every event reaches the connected clients of every api-server replica.
//!
//! Across processes the transport is Redis pub/sub (as in the seed): publishers (api-server
//! replicas, processors) PUBLISH each event as JSON on one channel and every replica relays what
//! it receives to its local subscribers. Pub/sub keeps no history, so whenever the subscription
//! (re)connects, local subscribers get [`FanoutItem::Resync`] and catch up from the event log
//! in the database; that is what makes delivery gap-free across Redis outages. In embedded mode
//! the fan-out is in-process only.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::event::Event;

#[derive(Debug, Clone)]
pub enum FanoutItem {
    Event(Arc<Event>),
    /// Events may have been missed: catch up from the event log.
    Resync,
}

#[derive(Clone)]
pub struct Fanout {
    local: broadcast::Sender<FanoutItem>,
    redis: Option<RedisSide>,
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
        let (local, _) = broadcast::channel(capacity);
        Self { local, redis: None }
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
        let (local, _) = broadcast::channel(capacity);
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
                    // No subscriber is not an error: nobody is listening right now.
                    let _ = self.local.send(FanoutItem::Event(Arc::new(event.clone())));
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
        self.local.subscribe()
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
    local: broadcast::Sender<FanoutItem>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            // Anything published while we were not subscribed is only in the event log.
            let _ = local.send(FanoutItem::Resync);
            tracing::info!(channel, "relaying fan-out from Redis");
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                match serde_json::from_slice::<Event>(message.get_payload_bytes()) {
                    Ok(event) => {
                        let _ = local.send(FanoutItem::Event(Arc::new(event)));
                    }
                    Err(error) => tracing::warn!(%error, "ignoring an undecodable fan-out message"),
                }
            }
            redis::RedisResult::Ok(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = session => match result {
                Ok(()) => {
                    tracing::warn!(channel, "Redis closed the fan-out subscription; resubscribing");
                    backoff = Duration::from_millis(100);
                }
                Err(error) => {
                    tracing::warn!(channel, %error, retry_in = ?backoff, "fan-out subscription failed");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}
