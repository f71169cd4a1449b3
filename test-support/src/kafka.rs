use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::{settings, unique_name, unreachable_component};

/// A topic created for one test on the test environment's broker.
pub struct KafkaTopic {
    pub name: String,
    pub brokers: String,
}

/// Creates a topic with a unique name and the given number of partitions.
pub async fn kafka_topic(partitions: i32) -> KafkaTopic {
    let brokers = settings().kafka_brokers.clone();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("socket.connection.setup.timeout.ms", "5000")
        .create()
        .unwrap_or_else(|e| panic!("KAFKA_BROKERS {brokers}: {e}"));
    let name = unique_name("t");
    let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .unwrap_or_else(|e| unreachable_component("kafka", &brokers, e));
    for result in results {
        result.unwrap_or_else(|(topic, code)| {
            unreachable_component("kafka", &brokers, format!("creating topic {topic}: {code}"))
        });
    }
    KafkaTopic { name, brokers }
}
