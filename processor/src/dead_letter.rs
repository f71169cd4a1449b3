//! The dead-letter topic: records the consumer could not process, with why and where from,
//! and the `processor dlq` commands to inspect them and re-publish them to their source.
//!
//! A dead-lettered record keeps its key, value and headers and gains the `dlq-*` headers
//! below. Replaying a record twice is harmless: processing is idempotent by event id.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use herald_core::config::KafkaArgs;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::connections::require_brokers;
use crate::failure::Failure as CliFailure;
use crate::kafka::{self, copy_headers, header};

/// Header names added to dead-lettered records.
pub mod dlq_headers {
    pub const ERROR: &str = "dlq-error";
    pub const SOURCE_TOPIC: &str = "dlq-source-topic";
    pub const SOURCE_PARTITION: &str = "dlq-source-partition";
    pub const SOURCE_OFFSET: &str = "dlq-source-offset";
    pub const ATTEMPTS: &str = "dlq-attempts";
    /// RFC 3339.
    pub const FIRST_FAILURE_AT: &str = "dlq-first-failure-at";
    pub const PREFIX: &str = "dlq-";
}

/// Why a record is dead-lettered.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    pub attempts: u32,
    pub first_failure_at: DateTime<Utc>,
}

/// Produces `record` to the dead-letter topic and waits for the broker's acknowledgement.
pub async fn send(
    producer: &FutureProducer,
    topic: &str,
    record: &OwnedMessage,
    failure: &Failure,
) -> Result<(), rdkafka::error::KafkaError> {
    let partition = record.partition().to_string();
    let offset = record.offset().to_string();
    let attempts = failure.attempts.to_string();
    let first = failure.first_failure_at.to_rfc3339();
    let mut headers = copy_headers(record.headers(), |key| key.starts_with(dlq_headers::PREFIX));
    for (key, value) in [
        (dlq_headers::ERROR, failure.error.as_str()),
        (dlq_headers::SOURCE_TOPIC, record.topic()),
        (dlq_headers::SOURCE_PARTITION, &partition),
        (dlq_headers::SOURCE_OFFSET, &offset),
        (dlq_headers::ATTEMPTS, &attempts),
        (dlq_headers::FIRST_FAILURE_AT, &first),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let mut out = FutureRecord::to(topic).headers(headers);
    if let Some(key) = record.key() {
        out = out.key(key);
    }
    if let Some(payload) = record.payload() {
        out = out.payload(payload);
    }
    producer
        .send(out, Duration::from_secs(30))
        .await
        .map(drop)
        .map_err(|(error, _)| error)
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Print the dead-letter records (oldest first) with their failure headers.
    List(ListArgs),
    /// Re-publish dead-letter records to the topic they came from, with their key, value and
    /// original headers. Choose them with --record, or all with --all (up to --limit).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// Print at most this many records.
    #[arg(long, default_value_t = 100)]
    limit: usize,

    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    kafka: KafkaArgs,

    /// A record to replay, as PARTITION:OFFSET of the dead-letter topic (see `dlq list`);
    /// repeat for several.
    #[arg(long = "record", value_parser = parse_position, conflicts_with = "all")]
    records: Vec<(i32, i64)>,

    /// Replay every record (up to --limit), oldest first.
    #[arg(long)]
    all: bool,

    /// Replay at most this many records.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

fn parse_position(text: &str) -> Result<(i32, i64), String> {
    let (partition, offset) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not PARTITION:OFFSET"))?;
    let partition = partition
        .parse()
        .map_err(|_| format!("partition {partition:?} is not a number"))?;
    let offset = offset
        .parse()
        .map_err(|_| format!("offset {offset:?} is not a number"))?;
    Ok((partition, offset))
}

/// A dead-letter record as `dlq list` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    partition: i32,
    offset: i64,
    key: Option<String>,
    source_topic: Option<String>,
    source_partition: Option<String>,
    source_offset: Option<String>,
    error: Option<String>,
    attempts: Option<String>,
    first_failure_at: Option<String>,
    payload: String,
}

impl Listed {
    fn from(record: &OwnedMessage) -> Self {
        let get = |key| header(record.headers(), key);
        Self {
            partition: record.partition(),
            offset: record.offset(),
            key: record
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            source_topic: get(dlq_headers::SOURCE_TOPIC),
            source_partition: get(dlq_headers::SOURCE_PARTITION),
            source_offset: get(dlq_headers::SOURCE_OFFSET),
            error: get(dlq_headers::ERROR),
            attempts: get(dlq_headers::ATTEMPTS),
            first_failure_at: get(dlq_headers::FIRST_FAILURE_AT),
            payload: String::from_utf8_lossy(record.payload().unwrap_or_default()).into_owned(),
        }
    }
}

pub async fn run(command: DlqCommand) -> Result<(), CliFailure> {
    match command {
        DlqCommand::List(args) => {
            let records = read_all(&args.kafka, args.limit).await?;
            for record in &records {
                let listed = Listed::from(record);
                if args.json {
                    println!("{}", serde_json::to_string(&listed).unwrap_or_default());
                } else {
                    println!(
                        "{}:{} from {}/{}/{} attempts={} first-failure={} error={}\n  key={} value={}",
                        listed.partition,
                        listed.offset,
                        listed.source_topic.as_deref().unwrap_or("?"),
                        listed.source_partition.as_deref().unwrap_or("?"),
                        listed.source_offset.as_deref().unwrap_or("?"),
                        listed.attempts.as_deref().unwrap_or("?"),
                        listed.first_failure_at.as_deref().unwrap_or("?"),
                        listed.error.as_deref().unwrap_or("?"),
                        listed.key.as_deref().unwrap_or(""),
                        listed.payload,
                    );
                }
            }
            eprintln!("{} dead-letter record(s)", records.len());
            Ok(())
        }
        DlqCommand::Replay(args) => replay(args).await,
    }
}

async fn replay(args: ReplayArgs) -> Result<(), CliFailure> {
    if args.records.is_empty() && !args.all {
        return Err(CliFailure::usage(
            "choose records with --record PARTITION:OFFSET (see `processor dlq list`) or \
             replay everything with --all",
        ));
    }
    let chosen: HashSet<(i32, i64)> = args.records.iter().copied().collect();
    let limit = if args.all { args.limit } else { chosen.len() };
    let read_limit = if args.all { limit } else { usize::MAX };
    let records: Vec<_> = read_all(&args.kafka, read_limit)
        .await?
        .into_iter()
        .filter(|record| args.all || chosen.contains(&(record.partition(), record.offset())))
        .take(limit)
        .collect();
    let found: HashSet<(i32, i64)> = records
        .iter()
        .map(|r| (r.partition(), r.offset()))
        .collect();
    let missing: Vec<String> = chosen
        .difference(&found)
        .map(|(p, o)| format!("{p}:{o}"))
        .collect();
    if !missing.is_empty() {
        return Err(CliFailure::usage(format!(
            "no such dead-letter record(s): {}",
            missing.join(", ")
        )));
    }

    let brokers = require_brokers(&args.kafka)?;
    let producer: FutureProducer = kafka::client_config(&args.kafka, brokers)?
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .context("creating the Kafka producer")?;
    for record in &records {
        let source = header(record.headers(), dlq_headers::SOURCE_TOPIC)
            .unwrap_or_else(|| args.kafka.notifications_topic.clone());
        let headers: OwnedHeaders =
            copy_headers(record.headers(), |key| key.starts_with(dlq_headers::PREFIX));
        let mut out = FutureRecord::to(&source).headers(headers);
        if let Some(key) = record.key() {
            out = out.key(key);
        }
        if let Some(payload) = record.payload() {
            out = out.payload(payload);
        }
        let (partition, offset) = producer
            .send(out, Duration::from_secs(30))
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(error, _)| {
                anyhow::anyhow!(
                    "replaying {}:{} to {source}: {error}",
                    record.partition(),
                    record.offset()
                )
            })?;
        println!(
            "replayed {}:{} to {source} partition {partition} offset {offset}",
            record.partition(),
            record.offset()
        );
    }
    eprintln!("{} record(s) replayed", records.len());
    Ok(())
}

/// Reads the dead-letter topic from the beginning to its current end (no consumer group is
/// joined and nothing is committed), up to `limit` records.
async fn read_all(args: &KafkaArgs, limit: usize) -> Result<Vec<OwnedMessage>, CliFailure> {
    let brokers = require_brokers(args)?;
    let topic = &args.dead_letter_topic;
    let consumer: BaseConsumer = kafka::client_config(args, brokers)?
        .set("group.id", "herald-dlq-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("creating the Kafka consumer")?;
    let topic = topic.clone();
    let records = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<OwnedMessage>> {
        let timeout = Duration::from_secs(30);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .with_context(|| format!("reading the metadata of {topic}"))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(
            !partitions.is_empty(),
            "dead-letter topic {topic} does not exist (the consumer creates it when it starts)"
        );
        // Where each partition ends now; records arriving later are not waited for.
        let mut remaining = Vec::new();
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, timeout)
                .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
            if high > low {
                assignment.add_partition_offset(&topic, partition, Offset::Offset(low))?;
                remaining.push((partition, high));
            }
        }
        let mut records = Vec::new();
        if remaining.is_empty() {
            return Ok(records);
        }
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !remaining.is_empty() && records.len() < limit {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "timed out reading {topic}"
            );
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let message = message
                .with_context(|| format!("reading {topic}"))?
                .detach();
            remaining.retain(|&(partition, high)| {
                partition != message.partition() || message.offset() + 1 < high
            });
            records.push(message);
        }
        records.sort_by_key(|r| (r.timestamp().to_millis(), r.partition(), r.offset()));
        Ok(records)
    })
    .await
    .context("reading the dead-letter topic")??;
    Ok(records)
}
