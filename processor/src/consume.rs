//! `processor consume`: the Kafka consumer.
//!
//! Each partition's records are handled one at a time, in order, by one of `--lanes`
//! concurrent lanes, which keeps the order per key (= per notification). For each record:
//! decode, apply the processing step (one database transaction, idempotent by event id),
//! broadcast the status event, then store the offset; stored offsets are committed every
//! `--commit-interval-ms`, when partitions are revoked and at shutdown, so a commit never
//! covers a record whose effect is not durable. The database being unavailable is retried
//! with exponential backoff for as long as it takes, without moving the offset; records that
//! cannot be processed (undecodable, invalid, or failing `--max-attempts` times with another
//! error) go to the dead-letter topic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use clap::Args;
use herald_core::config::{DatabaseArgs, KafkaArgs, RedisArgs};
use herald_core::db::Db;
use herald_core::event::{Event, headers};
use herald_core::fanout::Fanout;
use herald_core::processing::{self, Outcome, ProcessError};
use herald_runtime::backoff::Backoff;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Statistics};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::connections::{connect_db, require_brokers, require_redis};
use crate::dead_letter::{self, Failure as DeadLetterFailure};
use crate::failure::Failure;
use crate::kafka::{self, HeaderExtractor};
use crate::metrics::Metrics;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    database: DatabaseArgs,

    #[command(flatten)]
    redis: RedisArgs,

    #[command(flatten)]
    kafka: KafkaArgs,

    /// Kafka consumer group; all processor replicas share it and split the partitions.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "herald-processor")]
    group_id: String,

    /// Where to serve Prometheus metrics (`/metrics`).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:9090")]
    metrics_addr: SocketAddr,

    /// Attempts for a record failing with an error other than the database being unavailable,
    /// before it goes to the dead-letter topic. Unavailability is retried without limit.
    #[arg(long, env = "PROCESSOR_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,

    /// First retry delay in milliseconds; it doubles with every retry up to --retry-max-ms.
    #[arg(long, env = "PROCESSOR_RETRY_INITIAL_MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    retry_initial_ms: u64,

    /// Longest retry delay in milliseconds.
    #[arg(long, env = "PROCESSOR_RETRY_MAX_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    retry_max_ms: u64,

    /// Records handled concurrently: partitions are spread over this many lanes, each
    /// handling its records in order, so the order per key (notification) holds.
    #[arg(long, env = "PROCESSOR_LANES", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    lanes: u16,

    /// How often the offsets of handled records are committed, in milliseconds (they are also
    /// committed when partitions are revoked and on SIGTERM).
    #[arg(long, env = "PROCESSOR_COMMIT_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    commit_interval_ms: u64,
}

/// Commits on revoke and turns librdkafka's statistics into the lag gauge.
struct ConsumerHooks {
    metrics: Metrics,
}

impl ClientContext for ConsumerHooks {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in statistics.topics {
            for (partition, stats) in stats.partitions {
                // Partition -1 is librdkafka's internal queue; negative lag means unknown.
                if partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .lag
                        .with_label_values(&[topic.as_str(), &partition.to_string()])
                        .set(stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerHooks {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Only finished records have their offsets stored, so this commits no others.
            commit(consumer, CommitMode::Sync, "revoke");
            for element in partitions.elements() {
                let partition = element.partition().to_string();
                let _ = self
                    .metrics
                    .lag
                    .remove_label_values(&[element.topic(), &partition]);
            }
        }
    }
}

fn commit<C: Consumer<H>, H: ConsumerContext>(consumer: &C, mode: CommitMode, why: &str) {
    match consumer.commit_consumer_state(mode) {
        Ok(()) => tracing::debug!(why, "committed offsets"),
        // Nothing handled since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::warn!(%error, why, "committing offsets failed"),
    }
}

/// What the handler of one record needs.
struct Handler {
    db: Db,
    fanout: Fanout,
    producer: FutureProducer,
    dead_letter_topic: String,
    metrics: Metrics,
    max_attempts: u32,
    retry_initial: Duration,
    retry_max: Duration,
    shutdown: CancellationToken,
}

/// The handler gave up because the process is shutting down; the record stays uncommitted.
struct Stopped;

pub async fn run(args: ConsumeArgs) -> Result<(), Failure> {
    let brokers = require_brokers(&args.kafka)?;
    let redis_url = require_redis(&args.redis)?;
    let base = kafka::client_config(&args.kafka, brokers)?;
    let db = connect_db(&args.database).await?;
    let shutdown = CancellationToken::new();
    herald_runtime::shutdown::on_signal({
        let shutdown = shutdown.clone();
        move || {
            tracing::info!("shutting down: finishing the records in hand");
            shutdown.cancel();
        }
    });

    let fanout = Fanout::redis(
        redis_url,
        args.redis.fanout_channel.clone(),
        16,
        false,
        shutdown.clone(),
    )
    .await
    .with_context(|| {
        let url = herald_core::config::redacted(redis_url);
        format!("connecting to Redis at {url}")
    })?;
    let metrics = Metrics::new()?;
    let server = metrics
        .clone()
        .serve(args.metrics_addr, shutdown.clone())
        .await?;

    let topic = args.kafka.notifications_topic.clone();
    let mut config = base.clone();
    if config.get("statistics.interval.ms").is_none() {
        // The lag gauge comes from librdkafka's statistics.
        config.set("statistics.interval.ms", "5000");
    }
    if config.get("fetch.wait.max.ms").is_none() {
        // Notifications are latency-bound: the broker's default wait of 500 ms for a fuller
        // fetch shows up in the tail of end-to-end delivery at moderate rates.
        config.set("fetch.wait.max.ms", "10");
    }
    let consumer: StreamConsumer<ConsumerHooks> = config
        .set("group.id", &args.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(ConsumerHooks {
            metrics: metrics.clone(),
        })
        .context("creating the Kafka consumer")?;
    let partitions = source_partitions(&consumer, &topic)?;
    kafka::ensure_topic(&base, &args.kafka.dead_letter_topic, partitions).await?;
    let producer: FutureProducer = base
        .clone()
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the Kafka producer")?;
    consumer
        .subscribe(&[&topic])
        .with_context(|| format!("subscribing to {topic}"))?;
    tracing::info!(topic, group = args.group_id, "consuming");

    let handler = Arc::new(Handler {
        db,
        fanout,
        producer,
        dead_letter_topic: args.kafka.dead_letter_topic.clone(),
        metrics,
        max_attempts: args.max_attempts,
        retry_initial: Duration::from_millis(args.retry_initial_ms),
        retry_max: Duration::from_millis(args.retry_max_ms),
        shutdown: shutdown.clone(),
    });
    let consumer = Arc::new(consumer);
    let mut lanes = JoinSet::new();
    let senders: Vec<_> = (0..args.lanes)
        .map(|_| {
            let (sender, receiver) = mpsc::channel(LANE_QUEUE);
            lanes.spawn(lane(receiver, consumer.clone(), handler.clone()));
            sender
        })
        .collect();

    let mut commit_tick = tokio::time::interval(Duration::from_millis(args.commit_interval_ms));
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = commit_tick.tick() => {
                commit(consumer.as_ref(), CommitMode::Async, "interval");
                continue;
            }
            received = consumer.recv() => received,
        };
        let record = match received {
            Ok(message) => message.detach(),
            Err(error) => {
                tracing::warn!(%error, "receiving from Kafka failed");
                continue;
            }
        };
        // A partition always goes to the same lane, which keeps the order per key.
        let lane = usize::try_from(record.partition()).unwrap_or(0) % senders.len();
        tokio::select! {
            () = shutdown.cancelled() => break,
            sent = senders[lane].send(record) => if sent.is_err() { break },
        }
    }
    // Lanes finish the record in hand and leave the queued ones uncommitted.
    shutdown.cancel();
    drop(senders);
    while lanes.join_next().await.is_some() {}
    commit(consumer.as_ref(), CommitMode::Sync, "shutdown");
    consumer.unsubscribe();
    drop(consumer);
    let _ = server.await;
    tracing::info!("stopped");
    Ok(())
}

/// Records queued per lane: bounds memory while the database is slow or down.
const LANE_QUEUE: usize = 64;

/// Handles the records of its partitions one after another, storing each offset once the
/// record's effect is durable.
async fn lane(
    mut records: mpsc::Receiver<OwnedMessage>,
    consumer: Arc<StreamConsumer<ConsumerHooks>>,
    handler: Arc<Handler>,
) {
    while let Some(record) = records.recv().await {
        if handler.shutdown.is_cancelled() || handler.handle(&record).await.is_err() {
            return;
        }
        if let Err(error) =
            consumer.store_offset(record.topic(), record.partition(), record.offset())
        {
            // The partition was revoked meanwhile: its new owner redelivers the record and
            // finds it processed.
            tracing::warn!(%error, "storing the offset failed");
        }
    }
}

/// The number of partitions of `topic`, failing clearly when the topic does not exist.
fn source_partitions(consumer: &StreamConsumer<ConsumerHooks>, topic: &str) -> anyhow::Result<i32> {
    let metadata = tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some(topic), Duration::from_secs(30))
    })
    .with_context(|| format!("reading the metadata of Kafka topic {topic}"))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none())
        .map_or(0, |t| t.partitions().len());
    anyhow::ensure!(
        partitions > 0,
        "Kafka topic {topic} does not exist; create it (the operator does) or set \
         KAFKA_NOTIFICATIONS_TOPIC"
    );
    Ok(i32::try_from(partitions)?)
}

impl Handler {
    /// Handles one record to a durable end: processed (and broadcast), or dead-lettered.
    async fn handle(&self, record: &OwnedMessage) -> Result<(), Stopped> {
        let started = Instant::now();
        let span = tracing::info_span!(
            "process",
            otel.kind = "consumer",
            topic = record.topic(),
            partition = record.partition(),
            offset = record.offset(),
            event_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        // Continue the producer's trace (HTTP -> Kafka -> processor -> broadcast).
        herald_runtime::telemetry::continue_trace(&span, &HeaderExtractor(record.headers()));
        let outcome = self.handle_traced(record).instrument(span.clone()).await?;
        span.record("outcome", outcome);
        self.metrics.records.with_label_values(&[outcome]).inc();
        self.metrics
            .duration
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn handle_traced(&self, record: &OwnedMessage) -> Result<&'static str, Stopped> {
        let traceparent = kafka::header(record.headers(), headers::TRACEPARENT);
        let event = match processing::decode(record.payload().unwrap_or_default()) {
            Ok(event) => event,
            Err(error) => {
                let failure = DeadLetterFailure {
                    error: error.to_string(),
                    attempts: 1,
                    first_failure_at: Utc::now(),
                };
                return self.dead_letter(record, failure).await;
            }
        };
        tracing::Span::current().record("event_id", tracing::field::display(event.id));

        let mut backoff = Backoff::new(self.retry_initial, self.retry_max);
        let mut attempts = 0;
        let mut first_failure_at = None;
        let outcome = loop {
            attempts += 1;
            let error =
                match processing::process_event(&self.db, &event, traceparent.as_deref()).await {
                    Ok(outcome) => break outcome,
                    Err(error) => error,
                };
            let first = *first_failure_at.get_or_insert_with(Utc::now);
            let reason = if error.is_transient() {
                "unavailable"
            } else {
                "error"
            };
            let permanent = matches!(error, ProcessError::Invalid(_))
                || (!error.is_transient() && attempts >= self.max_attempts);
            if permanent {
                let failure = DeadLetterFailure {
                    error: error.to_string(),
                    attempts,
                    first_failure_at: first,
                };
                return self.dead_letter(record, failure).await;
            }
            self.metrics.retries.with_label_values(&[reason]).inc();
            let delay = backoff.next_delay();
            tracing::warn!(%error, attempts, retry_in = ?delay, reason, "processing failed; retrying");
            self.pause(delay).await?;
        };
        if let Some(status_event) = outcome.broadcast() {
            self.broadcast(status_event).await;
        }
        if let Outcome::Skipped { reason } = &outcome {
            tracing::info!(reason, "nothing to change");
        }
        Ok(outcome.label())
    }

    /// Sends the status event to connected clients. The effect is already committed and a
    /// redelivery is not broadcast again, so a Redis failure is retried briefly and then
    /// logged: clients catch up from the event log when their fan-out reconnects.
    async fn broadcast(&self, event: &Event) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
        for attempt in 1..=5 {
            match self.fanout.publish(event).await {
                Ok(()) => return,
                Err(error) if attempt == 5 => {
                    self.metrics.broadcast_failures.inc();
                    tracing::error!(%error, event_id = %event.id, "broadcast failed; clients will resync from the event log");
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "broadcast failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Waits `delay` before a retry, unless the process is shutting down first.
    async fn pause(&self, delay: Duration) -> Result<(), Stopped> {
        tokio::select! {
            () = self.shutdown.cancelled() => Err(Stopped),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    async fn dead_letter(
        &self,
        record: &OwnedMessage,
        failure: DeadLetterFailure,
    ) -> Result<&'static str, Stopped> {
        tracing::warn!(
            error = failure.error,
            attempts = failure.attempts,
            "sending the record to the dead-letter topic"
        );
        let mut backoff = Backoff::new(self.retry_initial, self.retry_max);
        loop {
            match dead_letter::send(&self.producer, &self.dead_letter_topic, record, &failure).await
            {
                Ok(()) => {
                    self.metrics.dead_lettered.inc();
                    return Ok("dead_lettered");
                }
                Err(error) => {
                    // The offset must not move before the record is safe in the DLQ.
                    let delay = backoff.next_delay();
                    tracing::error!(%error, retry_in = ?delay, "producing to the dead-letter topic failed");
                    self.pause(delay).await?;
                }
            }
        }
    }
}
