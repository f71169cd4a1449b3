//! Kafka plumbing shared by the consumer and the dead-letter tools.

use std::time::Duration;

use anyhow::Context as _;
use herald_core::config::KafkaArgs;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Headers, OwnedHeaders};

use crate::failure::Failure;

/// A client configuration for `brokers` with the user's extra properties.
pub fn client_config(args: &KafkaArgs, brokers: &str) -> Result<ClientConfig, Failure> {
    args.client_config(brokers).map_err(Failure::Usage)
}

/// Creates `topic` when it does not exist yet (the broker may not auto-create topics). The
/// partition count follows the source topic, so replayed records keep their spread.
pub async fn ensure_topic(
    config: &ClientConfig,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().context("creating the Kafka admin client")?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let results = admin
        .create_topics([&new], &options)
        .await
        .with_context(|| format!("creating Kafka topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                anyhow::bail!(
                    "creating Kafka topic {name}: {code}; create it yourself or grant the \
                     processor the right to"
                )
            }
        }
    }
    Ok(())
}

/// The value of the first header named `key`, as text.
pub fn header<H: Headers>(headers: Option<&H>, key: &str) -> Option<String> {
    headers?
        .iter()
        .find(|header| header.key == key)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// A copy of `headers` without those `drop` says to leave out.
pub fn copy_headers<H: Headers>(headers: Option<&H>, drop: impl Fn(&str) -> bool) -> OwnedHeaders {
    let mut copy = OwnedHeaders::new();
    if let Some(headers) = headers {
        for header in headers.iter().filter(|h| !drop(h.key)) {
            copy = copy.insert(header);
        }
    }
    copy
}

/// Reads the W3C trace context of a record, for the global propagator.
pub struct HeaderExtractor<'a, H>(pub Option<&'a H>);

impl<H: Headers> opentelemetry::propagation::Extractor for HeaderExtractor<'_, H> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0?
            .iter()
            .find(|header| header.key.eq_ignore_ascii_case(key))
            .and_then(|header| header.value)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .map(|headers| headers.iter().map(|header| header.key).collect())
            .unwrap_or_default()
    }
}
