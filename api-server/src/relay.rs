//! The outbox relay: hands stored events on and takes them out of the outbox.
//!
//! POST answers once the event is in the database (with a row in the `outbox` table); this
//! task hands it on afterwards: to Kafka, or in embedded mode straight to the processor's
//! logic in this process. The writer gives it the committed events in memory, so the usual
//! path reads nothing back; the outbox table is the durable copy it sweeps for whatever that
//! path missed. While Kafka is down, events wait in the outbox and the relay retries with
//! backoff, so nothing acknowledged is lost. Kafka may see an event twice (a crash between
//! publish and delete); consumers dedupe by the `event-id` header, and the processing step is
//! idempotent by event id.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_core::db::{Db, DbError, OutboxBatch, Pending};
use herald_core::event::{Event, headers};
use herald_core::fanout::Fanout;
use herald_core::processing::{ProcessError, process_events};
use herald_runtime::backoff::Backoff;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

const BATCH: u32 = 500;
/// Handed-over batches (one per group commit) that may wait for the relay.
const HANDOFF_BATCHES: usize = 256;
/// How long the relay waits after a hand-over before it publishes, to gather more.
const LINGER: Duration = Duration::from_millis(5);
/// How often the outbox is swept, and how long an event must have waited there to be swept
/// while the in-memory path is working (anything younger is probably on its way).
const SWEEP_EVERY: Duration = Duration::from_secs(1);
const SWEEP_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(2);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
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

fn producer_config(mut config: ClientConfig) -> ClientConfig {
    config.set("enable.idempotence", "true").set("acks", "all");
    for (key, default) in [("message.timeout.ms", "10000"), ("linger.ms", "2")] {
        if config.get(key).is_none() {
            config.set(key, default);
        }
    }
    config
}

impl KafkaDestination {
    /// A producer that waits for every in-sync replica and never reorders or duplicates on its
    /// own retries (idempotent producer). `KAFKA_PROPERTIES` may tune the batching and the
    /// timeout, but not those guarantees.
    pub fn new(
        config: ClientConfig,
        topic: String,
    ) -> rdkafka::error::KafkaResult<(Self, KafkaProbe)> {
        let producer: FutureProducer = producer_config(config).create()?;
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

/// Hands the relay the events the writer has just committed, in memory, so that publishing
/// them needs no database read of the events. Best effort by design: every event also waits
/// in the outbox table, which the relay sweeps for whatever this path missed.
pub struct Handoff(mpsc::Sender<Vec<Pending>>);

impl Handoff {
    pub fn new() -> (Self, mpsc::Receiver<Vec<Pending>>) {
        let (sender, receiver) = mpsc::channel(HANDOFF_BATCHES);
        (Self(sender), receiver)
    }

    /// Never waits: while the relay is behind, the events stay in the outbox for its sweep.
    pub fn hand_over(&self, events: Vec<Pending>) {
        let _ = self.0.try_send(events);
    }
}

/// What the relay reads from and reports to.
pub struct Relay {
    pub db: Db,
    pub fanout: Fanout,
    pub metrics: Arc<Metrics>,
}

/// Runs until `shutdown`, then publishes what is pending one last time.
///
/// Two sources: batches handed over in memory, and a sweep of the outbox for events older
/// than [`SWEEP_AFTER`] (left by a crash, an outage or another replica). After a failure the
/// relay works from the outbox alone, with backoff, until it is empty again.
pub async fn run(
    relay: Relay,
    destination: Destination,
    mut handed_over: mpsc::Receiver<Vec<Pending>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
    let mut recovering = false;
    let mut sweep_at = Instant::now();
    loop {
        if Instant::now() >= sweep_at {
            // While recovering, everything pending is the sweep's: handed-over events too.
            let waiting_since = if recovering {
                Utc::now()
            } else {
                Utc::now() - SWEEP_AFTER
            };
            match sweep(&relay, &destination, waiting_since).await {
                Ok(count) if count == BATCH as usize => continue,
                Ok(_) => {
                    recovering = false;
                    backoff.reset();
                    sweep_at = Instant::now() + SWEEP_EVERY;
                }
                Err(error) => {
                    sweep_at = Instant::now() + failed(&relay, &error, &mut backoff);
                    recovering = true;
                }
            }
            if let Ok(backlog) = relay.db.unpublished_count().await {
                relay.metrics.outbox_backlog.set(backlog);
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            batch = handed_over.recv() => {
                let Some(mut events) = batch else { break };
                if recovering {
                    // Still in the outbox; the sweep publishes them once it can.
                    continue;
                }
                // Let more commits land first: each round costs a produce round trip and a
                // database statement whatever its size, so under load fewer, fuller rounds
                // are cheaper.
                tokio::time::sleep(LINGER).await;
                while events.len() < BATCH as usize {
                    match handed_over.try_recv() {
                        Ok(more) => events.extend(more),
                        Err(_) => break,
                    }
                }
                if let Err(error) = relay_handed_over(&relay, &destination, events).await {
                    sweep_at = Instant::now() + failed(&relay, &error, &mut backoff);
                    recovering = true;
                }
            }
            () = tokio::time::sleep_until(sweep_at) => {}
        }
    }
    // Flush: what was acknowledged before SIGTERM should reach Kafka before we exit. The
    // writer has stopped, so everything pending is in the outbox.
    let flush = async {
        loop {
            match sweep(&relay, &destination, Utc::now()).await {
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

/// Counts and logs a failed round; returns how long to wait before the next sweep.
fn failed(relay: &Relay, error: &RelayError, backoff: &mut Backoff) -> Duration {
    relay.metrics.outbox_publish_errors.inc();
    let wait = backoff.next_delay();
    tracing::warn!(%error, retry_in = ?wait, "outbox relay failed; events stay pending");
    wait
}

/// Publishes events handed over in memory, then removes them from the outbox: no claim, so
/// a round costs the database one statement. Another relay's sweep only takes events older
/// than [`SWEEP_AFTER`], and handed-over events older than half of it are left to the
/// sweeps, so two relays publish one event only when a round takes longer than a second.
async fn relay_handed_over(
    relay: &Relay,
    destination: &Destination,
    mut events: Vec<Pending>,
) -> Result<usize, RelayError> {
    let fresh_since = Utc::now() - SWEEP_AFTER / 2;
    events.retain(|pending| pending.event.occurred_at > fresh_since);
    match destination {
        Destination::Kafka(kafka) => {
            let sends = events
                .iter()
                .map(|pending| kafka.publish(&pending.event, pending.traceparent.as_deref()));
            futures::future::try_join_all(sends).await?;
            remove_published(relay, &events).await
        }
        Destination::InProcess => process_in_process(relay, events).await,
    }
}

async fn sweep(
    relay: &Relay,
    destination: &Destination,
    waiting_since: DateTime<Utc>,
) -> Result<usize, RelayError> {
    let batch = relay.db.claim_unpublished(BATCH, waiting_since).await?;
    match destination {
        Destination::Kafka(kafka) => publish_to_kafka(relay, kafka, batch).await,
        // SQLite: release the read transaction before processing writes elsewhere.
        Destination::InProcess => process_in_process(relay, batch.events).await,
    }
}

async fn publish_to_kafka(
    relay: &Relay,
    destination: &KafkaDestination,
    batch: OutboxBatch,
) -> Result<usize, RelayError> {
    if batch.events.is_empty() {
        return Ok(0);
    }
    let sends = batch
        .events
        .iter()
        .map(|pending| destination.publish(&pending.event, pending.traceparent.as_deref()));
    // Sent concurrently; a failure abandons the batch (the transaction rolls back on drop) and
    // the whole batch is retried, which can only duplicate, never lose.
    futures::future::try_join_all(sends).await?;
    let count = batch.events.len();
    relay.db.mark_published(batch).await?;
    relay.metrics.outbox_published.inc_by(count as u64);
    Ok(count)
}

/// Processes the pending events as the processor would (in one transaction), fans out what
/// changed, then takes them out of the outbox. A crash in between reprocesses them, which
/// changes nothing (idempotent by event id).
async fn process_in_process(relay: &Relay, events: Vec<Pending>) -> Result<usize, RelayError> {
    if events.is_empty() {
        return Ok(0);
    }
    let batch: Vec<(&Event, Option<&str>)> = events
        .iter()
        .map(|pending| (&pending.event, pending.traceparent.as_deref()))
        .collect();
    let outcomes =
        process_events(&relay.db, &batch)
            .await
            .map_err(|error| RelayError::Process {
                event: events[0].event.id,
                error,
            })?;
    let mut changed = Vec::new();
    for (pending, outcome) in events.iter().zip(outcomes) {
        match outcome {
            Ok(outcome) => changed.extend(outcome.broadcast().cloned()),
            // The api-server wrote this event itself, so it is valid; log and move on rather
            // than block the outbox behind it.
            Err(error) => {
                tracing::error!(event = %pending.event.id, %error, "in-process processing refused an event");
            }
        }
    }
    if let Err(error) = relay.fanout.publish_all(&changed).await {
        relay
            .metrics
            .fanout_publish_errors
            .inc_by(changed.len() as u64);
        tracing::warn!(%error, "could not fan out status changes");
    }
    remove_published(relay, &events).await
}

/// Takes published events out of the outbox (without a claim) and counts them.
async fn remove_published(relay: &Relay, events: &[Pending]) -> Result<usize, RelayError> {
    let sequences: Vec<i64> = events
        .iter()
        .map(|pending| pending.event.sequence)
        .collect();
    relay.db.mark_events_published(&sequences).await?;
    relay
        .metrics
        .outbox_published
        .inc_by(sequences.len() as u64);
    Ok(sequences.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_properties_tune_batching_but_not_the_delivery_guarantees() {
        let mut config = ClientConfig::new();
        config
            .set("linger.ms", "20")
            .set("acks", "1")
            .set("enable.idempotence", "false");
        let config = producer_config(config);
        assert_eq!(config.get("linger.ms"), Some("20"));
        assert_eq!(config.get("message.timeout.ms"), Some("10000"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(
            producer_config(ClientConfig::new()).get("linger.ms"),
            Some("2")
        );
    }
}
