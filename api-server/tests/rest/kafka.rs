//! What the API stores is published to Kafka, with headers, also after an outage.

use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use serde_json::{Value, json};

use crate::common::{Backing, Server};

fn consumer(brokers: &str, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", test_support::unique_name("rest-test"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// A consumed record: key, event JSON, and the event-id, event-type and traceparent headers.
type Record = (String, Value, String, String, String);

/// Reads records until `count` distinct events have arrived (Kafka may deliver one twice).
async fn read_records(consumer: &StreamConsumer, count: usize) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    while records.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a record within 60 s")
            .expect("consume");
        let header = |name: &str| {
            message
                .headers()
                .and_then(|headers| headers.iter().find(|h| h.key == name))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let event_id = header("event-id");
        if records.iter().any(|r| r.2 == event_id) {
            continue;
        }
        records.push((
            String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            serde_json::from_slice(message.payload().unwrap_or_default()).unwrap(),
            event_id,
            header("event-type"),
            header("traceparent"),
        ));
    }
    records
}

#[tokio::test]
async fn created_notifications_are_published_to_kafka_with_headers() {
    let topic = test_support::kafka_topic(3).await;
    let backing = Backing::real().await;
    let server = Server::start(
        &backing,
        &[
            ("KAFKA_BROKERS", &topic.brokers),
            ("KAFKA_NOTIFICATIONS_TOPIC", &topic.name),
        ],
    )
    .await;
    let ready = server
        .client()
        .get(server.url("/api/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = server
        .client()
        .post(server.url("/api/notifications"))
        .header("traceparent", traceparent)
        .json(&json!({"message": "to kafka", "type": "info", "userId": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();

    let consumer = consumer(&topic.brokers, &topic.name);
    let records = read_records(&consumer, 1).await;
    let (key, event, event_id, event_type, _) = &records[0];
    assert_eq!(
        key,
        created["id"].as_str().unwrap(),
        "keyed by notification id"
    );
    assert_eq!(event["type"], "notification.created");
    assert_eq!(event_type, "notification.created");
    assert_eq!(event["id"].as_str().unwrap(), event_id);
    assert_eq!(event["notification"], created);
    assert_eq!(event["sequence"], created["sequence"]);
    let carried = &records[0].4;
    assert!(
        carried.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "the record continues the caller's trace: {carried:?}"
    );
}

#[tokio::test]
async fn notifications_created_while_kafka_is_down_arrive_when_it_returns() {
    let kafka = test_support::PrivateEnv::start(&["kafka"]).await;
    let brokers = kafka.var("KAFKA_BROKERS").to_owned();
    let topic = "herald.notifications";
    create_topic(&brokers, topic).await;
    let backing = Backing::real().await;
    let server = Server::start(&backing, &[("KAFKA_BROKERS", &brokers)]).await;
    let mut created = vec![
        server
            .create(json!({"message": "before", "type": "info"}))
            .await,
    ];

    kafka.stop("kafka").await;
    for i in 0..20 {
        created.push(
            server
                .create(json!({"message": format!("during {i}"), "type": "info"}))
                .await,
        );
    }
    kafka.restart("kafka").await;

    let consumer = consumer(&brokers, topic);
    let records = read_records(&consumer, 21).await;
    let mut sequences: Vec<i64> = records
        .iter()
        .map(|r| r.1["sequence"].as_i64().unwrap())
        .collect();
    sequences.sort_unstable();
    let expected: Vec<i64> = created
        .iter()
        .map(|n| n["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        sequences, expected,
        "every acknowledged notification reached Kafka"
    );
    drop(kafka);
}

async fn create_topic(brokers: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            [&NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
}
