//! The event log's replay window, read once for many streams.
//!
//! Every stream reads the window when it opens. After a restart every client reconnects at
//! once, and one query each would mean thousands of queries in a second, and a connection pool
//! grown to its limit for them. Instead, reads take turns, and a stream uses the last read if
//! that read began after the stream subscribed to the fan-out: such a read saw everything
//! committed before the subscription, which is all a fresh read of its own would promise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use herald_core::db::{Db, DbError, ReplayWindow};
use tokio::sync::Mutex;

#[derive(Default)]
pub struct WindowReads {
    /// How many reads have begun.
    begun: AtomicU64,
    last: Mutex<Option<Read>>,
}

struct Read {
    number: u64,
    /// A failure is shared too: callers queued behind a read that timed out would otherwise
    /// each wait out the timeout in turn.
    outcome: Result<ReplayWindow, Arc<DbError>>,
}

/// Which reads are recent enough for a caller: those numbered above it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl WindowReads {
    /// Take this after subscribing to the fan-out.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.begun.load(Ordering::SeqCst))
    }

    /// The window as of a read that began after `ticket` was taken. Cancel-safe.
    pub async fn read(&self, db: &Db, ticket: Ticket) -> Result<ReplayWindow, DbError> {
        let mut last = self.last.lock().await;
        if let Some(read) = last.as_ref().filter(|read| read.number > ticket.0) {
            return read.outcome.clone().map_err(DbError::Shared);
        }
        let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        let outcome = db.replay_window().await.map_err(Arc::new);
        *last = Some(Read {
            number,
            outcome: outcome.clone(),
        });
        outcome.map_err(DbError::Shared)
    }
}

#[cfg(test)]
mod tests {
    use herald_core::notification::{NewNotification, NotificationType};

    use super::*;

    async fn embedded(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite://{}", dir.path().join("herald.db").display());
        let db = Db::connect(&url, 2).await.expect("connect");
        db.migrate().await.expect("migrate");
        db
    }

    async fn create(db: &Db) -> i64 {
        let new = NewNotification::new("hello".into(), NotificationType::Info, None, None)
            .expect("valid");
        let created = db
            .create_notification(&new, None, None)
            .await
            .expect("create");
        created.notification.sequence
    }

    #[tokio::test]
    async fn a_read_serves_the_callers_that_subscribed_before_it_began() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = embedded(&dir).await;
        let first = create(&db).await;
        let reads = WindowReads::default();
        let early = reads.ticket();
        let window = reads.read(&db, early).await.expect("read");
        assert_eq!(window.latest, Some(first));

        let second = create(&db).await;
        // The read above began after `early`: it is reused, without seeing `second`.
        let reused = reads.read(&db, early).await.expect("read");
        assert_eq!(reused.latest, Some(first));
        // A caller that subscribed after that read began gets a read of its own.
        let fresh = reads.read(&db, reads.ticket()).await.expect("read");
        assert_eq!(fresh.latest, Some(second));
    }

    #[tokio::test]
    async fn a_failed_read_is_shared_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = embedded(&dir).await;
        let sequence = create(&db).await;
        let reads = WindowReads::default();
        let early = reads.ticket();
        sqlx::query("ALTER TABLE events RENAME TO events_away")
            .execute(db.pool())
            .await
            .expect("rename");
        let failed = reads.read(&db, early).await.expect_err("no events table");
        sqlx::query("ALTER TABLE events_away RENAME TO events")
            .execute(db.pool())
            .await
            .expect("rename back");
        // The log is readable again, but this caller queued behind the failed read.
        let shared = reads
            .read(&db, early)
            .await
            .expect_err("the shared failure");
        assert!(matches!(shared, DbError::Shared(_)));
        assert_eq!(shared.to_string(), failed.to_string());
        let fresh = reads.read(&db, reads.ticket()).await.expect("read");
        assert_eq!(fresh.latest, Some(sequence));
    }
}
