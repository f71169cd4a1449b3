//! The processing step on the real PostgreSQL of the test environment and on SQLite:
//! status changes, their events, and idempotency by event id.

mod support;

use herald_core::db::Db;
use herald_core::event::{Event, EventType};
use herald_core::notification::{NewNotification, NotificationType, Status};
use herald_core::processing::{Outcome, ProcessError, process_event, process_events};
use support::{postgres, sqlite};
use uuid::Uuid;

async fn created(db: &Db, user: Option<&str>) -> Event {
    let new = NewNotification::new(
        "hello".into(),
        NotificationType::Info,
        user.map(Into::into),
        None,
    )
    .expect("valid");
    db.create_notification(&new, None, None)
        .await
        .expect("create")
        .event
        .expect("event")
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(db.pool())
        .await
        .expect("count")
}

async fn status_events_of(db: &Db, id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE notification_id = $1 AND type <> $2")
        .bind(id.to_string())
        .bind(EventType::Created.as_str())
        .fetch_one(db.pool())
        .await
        .expect("count")
}

async fn delivers_once_per_event(db: Db) {
    let broadcast = created(&db, None).await;
    let outcome = process_event(&db, &broadcast, Some("00-trace-span-01"))
        .await
        .expect("process");
    let Outcome::Changed(status) = &outcome else {
        panic!("expected a change, got {outcome:?}");
    };
    assert_eq!(outcome.broadcast(), Some(status));
    assert_eq!(status.kind, EventType::Delivered);
    assert_eq!(status.notification.status, Status::Delivered);
    assert_eq!(status.notification_id, broadcast.notification_id);
    assert_ne!(status.id, broadcast.id);
    assert!(status.sequence > broadcast.sequence);
    let stored = db
        .notification(broadcast.notification_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored, status.notification);
    // The status event is in the log (replay sees it) but not in the outbox.
    let replay = db
        .events_after(broadcast.sequence, None, 10)
        .await
        .expect("replay");
    assert_eq!(replay.events, std::slice::from_ref(status));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM outbox").await,
        1,
        "only the created event awaits the relay"
    );

    // A redelivery changes nothing and asks for no broadcast.
    let again = process_event(&db, &broadcast, None).await.expect("again");
    assert_eq!(again, Outcome::Duplicate);
    assert_eq!(again.broadcast(), None);
    assert_eq!(status_events_of(&db, broadcast.notification_id).await, 1);

    let for_alice = created(&db, Some("alice")).await;
    let outcome = process_event(&db, &for_alice, None).await.expect("process");
    assert_eq!(outcome.label(), "delivered");
}

async fn fails_invalid_targets_and_skips_missing_notifications(db: Db) {
    // The api-server refuses a blank user id; a record from elsewhere may still carry one.
    let event = created(&db, Some("bob")).await;
    sqlx::query("UPDATE notifications SET user_id = '   ' WHERE id = $1")
        .bind(event.notification_id.to_string())
        .execute(db.pool())
        .await
        .expect("corrupt the target");
    let outcome = process_event(&db, &event, None).await.expect("process");
    let Outcome::Changed(status) = &outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(status.kind, EventType::Failed);
    assert_eq!(status.notification.status, Status::Failed);
    let payload: String = sqlx::query_scalar("SELECT payload FROM events WHERE id = $1")
        .bind(status.id.to_string())
        .fetch_one(db.pool())
        .await
        .expect("payload");
    assert!(payload.contains("userId"), "{payload}");

    let mut gone = created(&db, None).await;
    sqlx::query("DELETE FROM notifications WHERE id = $1")
        .bind(gone.notification_id.to_string())
        .execute(db.pool())
        .await
        .expect("delete");
    let outcome = process_event(&db, &gone, None).await.expect("process");
    assert!(matches!(outcome, Outcome::Skipped { .. }), "{outcome:?}");
    assert_eq!(
        process_event(&db, &gone, None).await.expect("again"),
        Outcome::Duplicate
    );

    // Status events on the topic are not acted on; inconsistent events are refused.
    let mut delivered = event.clone();
    delivered.id = Uuid::now_v7();
    delivered.kind = EventType::Delivered;
    assert_eq!(
        process_event(&db, &delivered, None).await.expect("ignored"),
        Outcome::Ignored
    );
    gone.notification_id = Uuid::now_v7();
    assert!(matches!(
        process_event(&db, &gone, None).await,
        Err(ProcessError::Invalid(_))
    ));
}

#[tokio::test]
async fn postgres_delivers_once_per_event() {
    delivers_once_per_event(postgres().await).await;
}

#[tokio::test]
async fn sqlite_delivers_once_per_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    delivers_once_per_event(sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_fails_invalid_targets_and_skips_missing_notifications() {
    fails_invalid_targets_and_skips_missing_notifications(postgres().await).await;
}

#[tokio::test]
async fn sqlite_fails_invalid_targets_and_skips_missing_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    fails_invalid_targets_and_skips_missing_notifications(sqlite(&dir).await).await;
}

/// Two consumers handed the same event at once (a rebalance) apply it once between them.
#[tokio::test]
async fn postgres_concurrent_redeliveries_apply_once() {
    let db = postgres().await;
    let event = created(&db, None).await;
    let attempts = (0..8).map(|_| {
        let (db, event) = (db.clone(), event.clone());
        tokio::spawn(async move { process_event(&db, &event, None).await })
    });
    let mut changed = 0;
    for attempt in attempts {
        match attempt.await.expect("task").expect("process") {
            Outcome::Changed(_) => changed += 1,
            Outcome::Duplicate => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(changed, 1);
    assert_eq!(status_events_of(&db, event.notification_id).await, 1);
}

async fn processes_a_batch_in_one_transaction(db: Db) {
    let first = created(&db, None).await;
    let second = created(&db, Some("erin")).await;
    let mut inconsistent = created(&db, None).await;
    inconsistent.notification_id = Uuid::now_v7();
    let mut status = first.clone();
    status.kind = EventType::Delivered;
    let batch = [
        (&first, None),
        (
            &second,
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ),
        // The same event twice in one batch is applied once.
        (&first, None),
        (&status, None),
        (&inconsistent, None),
    ];
    let outcomes = process_events(&db, &batch).await.expect("the batch");
    assert_eq!(outcomes.len(), 5);
    for (i, kind) in [(0, EventType::Delivered), (1, EventType::Delivered)] {
        let Ok(Outcome::Changed(event)) = &outcomes[i] else {
            panic!("item {i}: expected a change, got {:?}", outcomes[i]);
        };
        assert_eq!(event.kind, kind);
    }
    assert!(
        matches!(outcomes[2], Ok(Outcome::Duplicate)),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(outcomes[3], Ok(Outcome::Ignored)),
        "{:?}",
        outcomes[3]
    );
    assert!(
        matches!(outcomes[4], Err(ProcessError::Invalid(_))),
        "{:?}",
        outcomes[4]
    );
    assert_eq!(status_events_of(&db, first.notification_id).await, 1);
    assert_eq!(status_events_of(&db, second.notification_id).await, 1);

    let again = process_events(&db, &batch[..2])
        .await
        .expect("a redelivery");
    assert!(
        again.iter().all(|o| matches!(o, Ok(Outcome::Duplicate))),
        "{again:?}"
    );
}

#[tokio::test]
async fn postgres_processes_a_batch_in_one_transaction() {
    processes_a_batch_in_one_transaction(postgres().await).await;
}

#[tokio::test]
async fn sqlite_processes_a_batch_in_one_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    processes_a_batch_in_one_transaction(sqlite(&dir).await).await;
}
