//! Proves each component of the test environment answers for real. Each test fails, naming
//! `scripts/testenv up`, when its component is not running.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use test_support::{kafka_topic, kube_namespace, test_database, test_redis, unique_name};

#[tokio::test]
async fn postgres_answers_queries_in_an_isolated_database() {
    let db = test_database().await;
    sqlx::query("CREATE TABLE smoke (id BIGINT PRIMARY KEY, note TEXT NOT NULL)")
        .execute(&db.pool)
        .await
        .expect("create table");
    sqlx::query("INSERT INTO smoke VALUES (1, 'hello'), (2, 'world')")
        .execute(&db.pool)
        .await
        .expect("insert");
    let (count, current): (i64, String) =
        sqlx::query_as("SELECT count(*), current_database()::text FROM smoke")
            .fetch_one(&db.pool)
            .await
            .expect("select");
    assert_eq!(count, 2);
    assert_eq!(current, db.name);
}

#[tokio::test]
async fn redis_sets_and_gets() {
    let mut redis = test_redis().await;
    let key = format!("{}greeting", redis.prefix);
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("hello")
        .arg("EX")
        .arg(60)
        .query_async(&mut redis.connection)
        .await
        .expect("SET");
    let value: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut redis.connection)
        .await
        .expect("GET");
    assert_eq!(value.as_deref(), Some("hello"));
}

#[tokio::test]
async fn kafka_produces_and_a_group_consumes_and_commits() {
    let topic = kafka_topic(2).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &topic.brokers)
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    for i in 0..3 {
        let payload = format!("message-{i}");
        producer
            .send(
                FutureRecord::to(&topic.name)
                    .key("same-key")
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }

    let group = unique_name("group");
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &topic.brokers)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic.name]).expect("subscribe");
    let mut received = Vec::new();
    let mut last = None;
    while received.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("no message within 30 s")
            .expect("consume");
        received.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        last = Some((message.partition(), message.offset()));
    }
    // One key, so one partition and the order it was produced in.
    assert_eq!(received, ["message-0", "message-1", "message-2"]);

    let (partition, offset) = last.expect("a message");
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(&topic.name, partition, Offset::Offset(offset + 1))
        .expect("offset");
    consumer.commit(&commit, CommitMode::Sync).expect("commit");
    let committed = consumer
        .committed(Duration::from_secs(10))
        .expect("read committed offsets");
    let element = committed
        .find_partition(&topic.name, partition)
        .expect("committed partition");
    assert_eq!(element.offset(), Offset::Offset(3));
}

#[tokio::test]
async fn kube_applies_a_crd_and_watches_its_objects() {
    let ns = kube_namespace().await;
    let group = format!("{}.smoke.herald.dev", ns.name);
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "properties": { "size": { "type": "integer", "minimum": 1 } }
                    } }
                } }
            }]
        }
    }))
    .expect("crd");
    let crds: Api<CustomResourceDefinition> = Api::all(ns.client.clone());
    crds.patch(
        &format!("widgets.{group}"),
        &PatchParams::apply("herald-smoke").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    kube::runtime::wait::await_condition(
        crds.clone(),
        &format!("widgets.{group}"),
        kube::runtime::wait::conditions::is_crd_established(),
    )
    .await
    .expect("CRD established");

    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
    let widgets: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &resource);
    let mut events = watcher(widgets.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();

    let mut widget = DynamicObject::new("first", &resource).within(&ns.name);
    widget.data = serde_json::json!({ "spec": { "size": 3 } });
    // The watch may start after the create; it lists first, so it sees the object either way.
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .expect("create widget");
    let seen = tokio::time::timeout(Duration::from_secs(30), events.try_next())
        .await
        .expect("no watch event within 30 s")
        .expect("watch")
        .expect("stream ended");
    assert_eq!(seen.metadata.name.as_deref(), Some("first"));
    assert_eq!(seen.data["spec"]["size"], 3);

    // The API server enforces the schema: a size below its minimum is refused.
    let mut invalid = DynamicObject::new("second", &resource).within(&ns.name);
    invalid.data = serde_json::json!({ "spec": { "size": 0 } });
    let error = widgets
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("an invalid widget is rejected");
    assert!(error.to_string().contains("spec.size"), "{error}");
}

/// A private Redis can be stopped and restarted without touching the shared one.
#[tokio::test]
async fn a_private_component_stops_and_restarts() {
    let private = test_support::PrivateEnv::start(&["redis"]).await;
    let url = private.var("REDIS_URL").to_owned();
    assert_ne!(url, test_support::settings().redis_url);
    let ping = |url: String| async move {
        let client = redis::Client::open(url).expect("url");
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    assert_eq!(ping(url.clone()).await.expect("ping"), "PONG");
    private.stop("redis").await;
    assert!(
        ping(url.clone()).await.is_err(),
        "a stopped Redis refuses connections"
    );
    private.restart("redis").await;
    assert_eq!(ping(url).await.expect("ping after restart"), "PONG");
}
