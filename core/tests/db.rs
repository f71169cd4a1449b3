//! The store on the real PostgreSQL of the test environment and on an embedded SQLite file:
//! both backends must behave the same.

mod support;

use chrono::{TimeDelta, Utc};
use herald_core::db::{Backend, Db, ListQuery, NewEntry, RequestFingerprint};
use herald_core::event::EventType;
use herald_core::notification::{NewNotification, NotificationType, Status};
use support::{postgres, sqlite};

fn new(message: &str, kind: NotificationType, user: Option<&str>) -> NewNotification {
    NewNotification::new(message.into(), kind, user.map(Into::into), None).expect("valid")
}

async fn creates_lists_and_replays(db: Db) {
    let first = db
        .create_notification(&new("one", NotificationType::Info, None), None, None)
        .await
        .expect("create");
    let second = db
        .create_notification(
            &new("two", NotificationType::Error, Some("alice")),
            None,
            Some("00-abc-def-01"),
        )
        .await
        .expect("create");
    assert!(second.notification.sequence > first.notification.sequence);
    assert_eq!(first.notification.status, Status::Pending);
    let event = first.event.clone().expect("event");
    assert_eq!(event.kind, EventType::Created);
    assert_eq!(event.sequence, first.notification.sequence);

    let read = db
        .notification(first.notification.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(read, first.notification);

    let all = db
        .list_notifications(&ListQuery {
            limit: 50,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        all,
        [second.notification.clone(), first.notification.clone()]
    );
    let page = db
        .list_notifications(&ListQuery {
            limit: 50,
            before_sequence: Some(second.notification.sequence),
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(page, std::slice::from_ref(&first.notification));
    let errors = db
        .list_notifications(&ListQuery {
            limit: 50,
            kind: Some(NotificationType::Error),
            user_id: Some("alice".into()),
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(errors, std::slice::from_ref(&second.notification));

    let replay = db
        .events_after(first.notification.sequence, None, 10)
        .await
        .expect("replay");
    assert_eq!(replay.events.len(), 1);
    assert!(!replay.more);
    assert_eq!(replay.events[0].notification, second.notification);
    // A user's stream carries broadcasts and what is addressed to that user only.
    let bob = db.events_after(0, Some("bob"), 10).await.expect("replay");
    assert_eq!(bob.events.len(), 1);
    assert_eq!(bob.events[0].notification.id, first.notification.id);
    let limited = db.events_after(0, None, 1).await.expect("replay");
    assert!(limited.more);

    let window = db.replay_window().await.expect("window");
    assert_eq!(window.oldest, Some(first.notification.sequence));
    assert_eq!(window.latest, Some(second.notification.sequence));
}

async fn idempotency_key_returns_the_first_result(db: Db) {
    let key = RequestFingerprint {
        key: "k-1".into(),
        request_hash: "h-1".into(),
    };
    let first = db
        .create_notification(
            &new("once", NotificationType::Success, None),
            Some(&key),
            None,
        )
        .await
        .expect("create");
    let again = db
        .create_notification(
            &new("once", NotificationType::Success, None),
            Some(&key),
            None,
        )
        .await
        .expect("retry");
    assert!(again.replayed);
    assert!(again.event.is_none());
    assert_eq!(again.notification, first.notification);
    let other_body = RequestFingerprint {
        key: "k-1".into(),
        request_hash: "h-2".into(),
    };
    let error = db
        .create_notification(
            &new("different", NotificationType::Success, None),
            Some(&other_body),
            None,
        )
        .await
        .expect_err("a reused key with another body is refused");
    assert!(error.to_string().contains("k-1"), "{error}");
    let all = db
        .list_notifications(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(all.len(), 1, "a retried request creates nothing new");
}

#[tokio::test]
async fn postgres_creates_lists_and_replays() {
    creates_lists_and_replays(postgres().await).await;
}

#[tokio::test]
async fn sqlite_creates_lists_and_replays() {
    let dir = tempfile::tempdir().expect("tempdir");
    creates_lists_and_replays(sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_idempotency_key_returns_the_first_result() {
    idempotency_key_returns_the_first_result(postgres().await).await;
}

#[tokio::test]
async fn sqlite_idempotency_key_returns_the_first_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    idempotency_key_returns_the_first_result(sqlite(&dir).await).await;
}

#[tokio::test]
async fn an_unknown_url_scheme_is_refused() {
    let error = Db::connect("mysql://localhost/x", 1)
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("postgres://"), "{error}");
}

const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// Entries for a batch create, each with the same trace.
fn traced(news: &[NewNotification]) -> Vec<NewEntry<'_>> {
    news.iter()
        .map(|new| NewEntry {
            new,
            traceparent: Some(TRACEPARENT),
        })
        .collect()
}

async fn creates_a_batch_in_one_transaction(db: Db) {
    let news: Vec<NewNotification> = (0..100)
        .map(|i| {
            new(
                &format!("batch {i}"),
                NotificationType::Info,
                (i % 2 == 0).then_some("even"),
            )
        })
        .collect();
    let entries = traced(&news);
    let created = db.create_notifications(&entries).await.expect("batch");
    assert_eq!(created.len(), 100);
    for (i, (created, new)) in created.iter().zip(&news).enumerate() {
        assert_eq!(
            created.notification.message, new.message,
            "results keep the order of the entries"
        );
        let event = created.event.as_ref().expect("event");
        assert_eq!(event.sequence, created.notification.sequence);
        if i > 0 {
            assert_ne!(created.notification.sequence, 0);
        }
    }
    let mut sequences: Vec<i64> = created.iter().map(|c| c.notification.sequence).collect();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(
        sequences.len(),
        100,
        "every notification has its own sequence"
    );
    let stored = db
        .list_notifications(&ListQuery {
            limit: 500,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(stored.len(), 100);
    let mut answered: Vec<_> = created.iter().map(|c| c.notification.clone()).collect();
    answered.sort_by_key(|n| std::cmp::Reverse(n.sequence));
    assert_eq!(stored, answered, "what was stored is what was answered");
    let replay = db.events_after(0, None, 500).await.expect("replay");
    assert_eq!(replay.events.len(), 100);
    assert_eq!(
        db.unpublished_count().await.expect("count"),
        100,
        "all wait for the relay"
    );
    assert!(
        db.create_notifications(&[])
            .await
            .expect("empty")
            .is_empty()
    );
}

#[tokio::test]
async fn postgres_creates_a_batch_in_one_transaction() {
    creates_a_batch_in_one_transaction(postgres().await).await;
}

#[tokio::test]
async fn sqlite_creates_a_batch_in_one_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    creates_a_batch_in_one_transaction(sqlite(&dir).await).await;
}

/// The relay's two ways through the outbox: the sweep takes only what has waited long enough,
/// a claimed event is invisible to a second sweeper until released (PostgreSQL), an abandoned
/// claim leaves its events pending, and publishing removes them.
async fn the_outbox_is_claimed_once(db: Db) {
    let news: Vec<NewNotification> = (0..4)
        .map(|i| new(&format!("outbox {i}"), NotificationType::Info, None))
        .collect();
    let entries = traced(&news);
    let created = db.create_notifications(&entries).await.expect("batch");
    let sequences: Vec<i64> = created.iter().map(|c| c.notification.sequence).collect();
    assert_eq!(db.unpublished_count().await.expect("count"), 4);

    // Too young for the sweep: these are on their way in memory.
    let young = db
        .claim_unpublished(100, Utc::now() - TimeDelta::seconds(2))
        .await
        .expect("sweep");
    assert!(young.events.is_empty());
    drop(young);

    // Handed over in memory and published: removed without a claim.
    db.mark_events_published(&sequences[..1])
        .await
        .expect("publish");
    assert_eq!(db.unpublished_count().await.expect("count"), 3);

    let claimed = db
        .claim_unpublished(2, Utc::now() + TimeDelta::seconds(1))
        .await
        .expect("sweep");
    let swept: Vec<i64> = claimed.events.iter().map(|p| p.event.sequence).collect();
    assert_eq!(swept, sequences[1..3]);
    assert_eq!(
        claimed.events[0].event,
        created[1].event.clone().expect("event")
    );
    assert_eq!(claimed.events[0].traceparent.as_deref(), Some(TRACEPARENT));
    if db.backend() == Backend::Postgres {
        // Another relay sweeping now skips the claimed ones.
        let other = db
            .claim_unpublished(100, Utc::now() + TimeDelta::seconds(1))
            .await
            .expect("sweep");
        let swept: Vec<i64> = other.events.iter().map(|p| p.event.sequence).collect();
        assert_eq!(swept, sequences[3..]);
        // Abandoned (its publish failed): the event stays pending.
        drop(other);
    }
    db.mark_published(claimed).await.expect("publish");
    assert_eq!(db.unpublished_count().await.expect("count"), 1);
    let last = db
        .claim_unpublished(100, Utc::now() + TimeDelta::seconds(1))
        .await
        .expect("sweep");
    assert_eq!(last.events.len(), 1);
    db.mark_published(last).await.expect("publish");
    assert_eq!(db.unpublished_count().await.expect("count"), 0);
}

#[tokio::test]
async fn postgres_the_outbox_is_claimed_once() {
    the_outbox_is_claimed_once(postgres().await).await;
}

#[tokio::test]
async fn sqlite_the_outbox_is_claimed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    the_outbox_is_claimed_once(sqlite(&dir).await).await;
}
