//! `processor consume` on real Kafka, PostgreSQL and Redis: processing, broadcast, idempotent
//! redelivery, the dead-letter topic and `processor dlq`.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use herald_core::event::EventType;
use herald_core::notification::Status;
use support::{Broadcasts, Env, free_port, metrics, sample, terminate, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_broadcasts_once_and_ignores_redeliveries() {
    let env = Env::new(3).await;
    let broadcasts = Broadcasts::subscribe(&env.redis_url, &env.channel).await;
    let events = env.create(30).await;
    env.produce(&events).await;
    // A redelivery of the first event within the same run.
    env.produce(&events[..1]).await;

    let port = free_port();
    let mut processor = env.consume("first", port, &[]);
    wait_until(
        Duration::from_secs(60),
        "30 delivered notifications",
        || async { env.delivered().await == 30 },
    )
    .await;
    wait_until(Duration::from_secs(10), "30 broadcasts", || async {
        broadcasts.len() >= 30
    })
    .await;
    let body = metrics(port).await;
    wait_until(
        Duration::from_secs(10),
        "the duplicate to be counted",
        || async {
            sample(
                &metrics(port).await,
                r#"herald_processor_records_total{outcome="duplicate"}"#,
            ) == 1.0
        },
    )
    .await;
    assert_eq!(
        sample(
            &body,
            r#"herald_processor_records_total{outcome="delivered"}"#
        ),
        30.0,
        "{body}"
    );
    assert!(body.contains("herald_processor_processing_duration_seconds_bucket"));
    let lag = format!(
        r#"herald_processor_consumer_lag{{partition="0",topic="{}"}}"#,
        env.topic
    );
    wait_until(
        Duration::from_secs(10),
        "the lag gauge to reach 0",
        || async {
            let body = metrics(port).await;
            body.contains(&lag) && sample(&body, &lag) == 0.0
        },
    )
    .await;
    assert!(
        terminate(&mut processor),
        "SIGTERM exits 0: {}",
        env.log("first")
    );

    // Each notification was broadcast once, as delivered, with the stored state.
    let received = broadcasts.events();
    assert_eq!(received.len(), 30);
    let ids: HashSet<_> = received.iter().map(|e| e.notification_id).collect();
    assert_eq!(ids, events.iter().map(|e| e.notification_id).collect());
    for event in &received {
        assert_eq!(event.kind, EventType::Delivered);
        assert_eq!(event.notification.status, Status::Delivered);
        let stored = env
            .db
            .notification(event.notification_id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(stored, event.notification);
    }
    assert_eq!(
        env.count("SELECT COUNT(*) FROM events WHERE type = 'notification.delivered'")
            .await,
        30
    );
    let traced = env
        .count("SELECT COUNT(*) FROM events WHERE type = 'notification.delivered' AND traceparent LIKE '00-4bf92f35%'")
        .await;
    assert_eq!(traced, 30, "status events continue the producer's trace");

    // A restart in a new consumer group reads everything again: nothing is re-applied or
    // re-broadcast.
    let port = free_port();
    let mut again = env.consume("again", port, &["--group-id", "another-group"]);
    wait_until(Duration::from_secs(60), "31 duplicates", || async {
        sample(
            &metrics(port).await,
            r#"herald_processor_records_total{outcome="duplicate"}"#,
        ) == 31.0
    })
    .await;
    assert!(terminate(&mut again));
    assert_eq!(broadcasts.len(), 30);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM events WHERE type = 'notification.delivered'")
            .await,
        30
    );
    // Offsets were committed on SIGTERM: the first group starts where it stopped.
    let port = free_port();
    let mut resumed = env.consume("resumed", port, &[]);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let body = metrics(port).await;
    assert!(terminate(&mut resumed));
    assert!(
        !body.contains("herald_processor_records_total{"),
        "nothing redelivered: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_are_dead_lettered_and_replay_brings_them_back() {
    let env = Env::new(2).await;
    let good = env.create(3).await;
    env.produce(&good[..1]).await;
    env.produce_raw("not-json", b"{ this is not an event").await;
    // Valid JSON, but the event names another notification than it carries.
    let mut inconsistent = serde_json::to_value(&good[1]).expect("json");
    inconsistent["notificationId"] = uuid::Uuid::now_v7().to_string().into();
    env.produce_raw("inconsistent", inconsistent.to_string().as_bytes())
        .await;
    // A stored notification the processor cannot read fails every attempt.
    sqlx::query("UPDATE notifications SET metadata = 'not json' WHERE id = $1")
        .bind(good[2].notification_id.to_string())
        .execute(env.db.pool())
        .await
        .expect("corrupt");
    env.produce(&good[2..]).await;
    env.produce(&good[1..2]).await;

    let port = free_port();
    let mut processor = env.consume(
        "dlq",
        port,
        &["--max-attempts", "3", "--retry-initial-ms", "10"],
    );
    wait_until(
        Duration::from_secs(60),
        "two delivered notifications",
        || async { env.delivered().await == 2 },
    )
    .await;
    wait_until(Duration::from_secs(30), "three dead letters", || async {
        sample(
            &metrics(port).await,
            "herald_processor_dead_letter_records_total",
        ) == 3.0
    })
    .await;
    let body = metrics(port).await;
    assert_eq!(
        sample(&body, r#"herald_processor_retries_total{reason="error"}"#),
        2.0
    );

    let listed = env.dlq_list();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for record in &listed {
        assert_eq!(record["sourceTopic"], env.topic.as_str());
        assert!(
            record["sourcePartition"]
                .as_str()
                .is_some_and(|p| p.parse::<i32>().is_ok())
        );
        assert!(
            record["sourceOffset"]
                .as_str()
                .is_some_and(|o| o.parse::<i64>().is_ok())
        );
        let first = record["firstFailureAt"].as_str().expect("first failure");
        chrono::DateTime::parse_from_rfc3339(first).expect("an RFC 3339 time");
    }
    let by_key = |key: &str| {
        listed
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("{key} in {listed:?}"))
            .clone()
    };
    let undecodable = by_key("not-json");
    assert!(
        undecodable["error"]
            .as_str()
            .unwrap()
            .contains("undecodable"),
        "{undecodable}"
    );
    assert_eq!(undecodable["attempts"], "1");
    assert_eq!(undecodable["payload"], "{ this is not an event");
    assert!(
        by_key("inconsistent")["error"]
            .as_str()
            .unwrap()
            .contains("invalid event")
    );
    let corrupt = by_key(&good[2].notification_id.to_string());
    assert_eq!(corrupt["attempts"], "3");
    assert!(
        corrupt["error"].as_str().unwrap().contains("corrupt"),
        "{corrupt}"
    );

    // Fix the stored notification and replay its record: it is processed this time.
    sqlx::query("UPDATE notifications SET metadata = NULL WHERE id = $1")
        .bind(good[2].notification_id.to_string())
        .execute(env.db.pool())
        .await
        .expect("repair");
    let position = format!("{}:{}", corrupt["partition"], corrupt["offset"]);
    let replay = env.run(&["dlq", "replay", "--record", &position]);
    assert!(replay.status.success(), "{replay:?}");
    wait_until(
        Duration::from_secs(30),
        "the replayed record to be delivered",
        || async { env.delivered().await == 3 },
    )
    .await;
    // --all replays the rest; they are still poison, so they come back to the DLQ.
    let replay = env.run(&["dlq", "replay", "--all"]);
    assert!(replay.status.success(), "{replay:?}");
    assert!(String::from_utf8_lossy(&replay.stderr).contains("3 record(s) replayed"));
    wait_until(Duration::from_secs(30), "the poison to return", || async {
        sample(
            &metrics(port).await,
            "herald_processor_dead_letter_records_total",
        ) == 5.0
    })
    .await;
    assert!(terminate(&mut processor));
    assert_eq!(env.dlq_list().len(), 5);

    let usage = env.run(&["dlq", "replay"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--record"));
    let missing = env.run(&["dlq", "replay", "--record", "0:999999"]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}
