//! The outbox relay: hands stored events on and marks them published.
//!
//! POST answers once the event is in the database; this task hands it on afterwards: to Kafka,
//! or in embedded mode straight to the processor's logic in this process. While Kafka is down,
//! events wait in the outbox and the relay retries with backoff, so nothing acknowledged is
//! lost. Kafka may see an event twice (a crash between publish and mark); consumers dedupe by
//! the `event-id` header, and the processing step is idempotent by event id.

use std::time::Duration;

use herald_core::db::DbError;
use herald_core::event::{Event, headers};
use herald_core::processing::{ProcessError, process_events};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::state::SharedState;

const BATCH: u32 = 500;
const POLL: Duration = Duration::from_secs(1);
/// How long the relay waits after a wake-up before it claims the pending events.
const LINGER: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub enum Destination {
    Kafka(KafkaDestination),
    /// Embedded mode: no Kafka; the processor's step runs here and its result is fanned out.
    InProcess,
}

pub struct KafkaDestination {
    producer: FutureProducer,
    topic: String,
}

/// Answers readiness checks with a metadata request.
pub struct KafkaProbe {
    producer: FutureProducer,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("publishing event {event} to Kafka: {error}")]
    Kafka {
        event: uuid::Uuid,
        error: rdkafka::error::KafkaError,
    },
    #[error("encoding an event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("processing event {event} in process: {error}")]
    Process {
        event: uuid::Uuid,
        error: ProcessError,
    },
}

impl KafkaDestination {
    /// A producer that waits for every in-sync replica and never reorders or duplicates on its
    /// own retries (idempotent producer).
    pub fn new(
        mut config: ClientConfig,
        topic: String,
    ) -> rdkafka::error::KafkaResult<(Self, KafkaProbe)> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "10000")
            .set("linger.ms", "2");
        let producer: FutureProducer = config.create()?;
        let probe = KafkaProbe {
            producer: producer.clone(),
        };
        Ok((Self { producer, topic }, probe))
    }

    async fn publish(&self, event: &Event, traceparent: Option<&str>) -> Result<(), RelayError> {
        let payload = serde_json::to_vec(event)?;
        let key = event.notification_id.to_string();
        let event_id = event.id.to_string();
        let mut record_headers = OwnedHeaders::new()
            .insert(Header {
                key: headers::EVENT_ID,
                value: Some(event_id.as_str()),
            })
            .insert(Header {
                key: headers::EVENT_TYPE,
                value: Some(event.kind.as_str()),
            });
        if let Some(traceparent) = traceparent {
            record_headers = record_headers.insert(Header {
                key: headers::TRACEPARENT,
                value: Some(traceparent),
            });
        }
        let record = FutureRecord::to(&self.topic)
            .key(&key)
            .payload(&payload)
            .headers(record_headers);
        self.producer
            .send(record, Duration::from_secs(15))
            .await
            .map(|_| ())
            .map_err(|(error, _)| RelayError::Kafka {
                event: event.id,
                error,
            })
    }
}

impl KafkaProbe {
    pub async fn check(&self) -> Result<(), String> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Runs until `shutdown`, then publishes what is pending one last time.
pub async fn run(state: SharedState, destination: Destination, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match relay_once(&state, &destination).await {
            Ok(published) if published == BATCH as usize => continue,
            Ok(_) => backoff = Duration::from_millis(100),
            Err(error) => {
                state.metrics.outbox_publish_errors.inc();
                tracing::warn!(%error, retry_in = ?backoff, "outbox relay failed; events stay pending");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        if let Ok(backlog) = state.db.unpublished_count().await {
            state.metrics.outbox_backlog.set(backlog);
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = state.relay_wakeup.notified() => {
                // Let more commits land first: each relay round costs a claim, an update and
                // a commit whatever its size, so under load fewer, fuller rounds are cheaper.
                tokio::time::sleep(LINGER).await;
            }
            () = tokio::time::sleep(POLL) => {}
        }
    }
    // Flush: what was acknowledged before SIGTERM should reach Kafka before we exit.
    let flush = async {
        loop {
            match relay_once(&state, &destination).await {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "final outbox flush failed; the next start publishes the rest");
                    return;
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), flush)
        .await
        .is_err()
    {
        tracing::warn!("final outbox flush timed out; the next start publishes the rest");
    }
    if let Destination::Kafka(kafka) = &destination {
        let _ = kafka.producer.flush(Duration::from_secs(5));
    }
}

async fn relay_once(state: &SharedState, destination: &Destination) -> Result<usize, RelayError> {
    match destination {
        Destination::Kafka(kafka) => publish_to_kafka(state, kafka).await,
        Destination::InProcess => process_in_process(state).await,
    }
}

async fn publish_to_kafka(
    state: &SharedState,
    destination: &KafkaDestination,
) -> Result<usize, RelayError> {
    let batch = state.db.claim_unpublished(BATCH).await?;
    if batch.events.is_empty() {
        return Ok(0);
    }
    let sends = batch
        .events
        .iter()
        .map(|(event, traceparent)| destination.publish(event, traceparent.as_deref()));
    // Sent concurrently; a failure abandons the batch (the transaction rolls back on drop) and
    // the whole batch is retried, which can only duplicate, never lose.
    futures::future::try_join_all(sends).await?;
    let count = batch.events.len();
    state.db.mark_published(batch).await?;
    state.metrics.outbox_published.inc_by(count as u64);
    Ok(count)
}

/// Processes the pending events as the processor would (in one transaction), fans out what
/// changed, then marks them published. A crash in between reprocesses them, which changes
/// nothing (idempotent by event id).
async fn process_in_process(state: &SharedState) -> Result<usize, RelayError> {
    let events = state.db.claim_unpublished(BATCH).await?.events;
    if events.is_empty() {
        return Ok(0);
    }
    let batch: Vec<(&Event, Option<&str>)> = events
        .iter()
        .map(|(event, traceparent)| (event, traceparent.as_deref()))
        .collect();
    let outcomes =
        process_events(&state.db, &batch)
            .await
            .map_err(|error| RelayError::Process {
                event: events[0].0.id,
                error,
            })?;
    let mut changed = Vec::new();
    for ((event, _), outcome) in events.iter().zip(outcomes) {
        match outcome {
            Ok(outcome) => changed.extend(outcome.broadcast().cloned()),
            // The api-server wrote this event itself, so it is valid; log and move on rather
            // than block the outbox behind it.
            Err(error) => {
                tracing::error!(event = %event.id, %error, "in-process processing refused an event");
            }
        }
    }
    if let Err(error) = state.fanout.publish_all(&changed).await {
        state
            .metrics
            .fanout_publish_errors
            .inc_by(changed.len() as u64);
        tracing::warn!(%error, "could not fan out status changes");
    }
    let sequences: Vec<i64> = events.iter().map(|(event, _)| event.sequence).collect();
    state.db.mark_events_published(&sequences).await?;
    state
        .metrics
        .outbox_published
        .inc_by(sequences.len() as u64);
    Ok(sequences.len())
}
