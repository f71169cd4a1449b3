//! Reading the event log: replay for reconnecting clients and the outbox for the relay.

use sqlx::AssertSqlSafe;

use super::rows::{EVENT_COLUMNS, EventRow};
use super::{Db, DbError};
use crate::event::Event;

/// The range of sequences the log still holds (older events are removed by the cleanup job).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The oldest retained sequence; `None` when the log is empty.
    pub oldest: Option<i64>,
    pub latest: Option<i64>,
}

impl ReplayWindow {
    /// True when a client that has seen everything up to `after` has missed events that are
    /// no longer kept, so replay cannot be complete.
    pub fn has_gap_after(&self, after: i64) -> bool {
        after > 0 && self.oldest.is_some_and(|oldest| after + 1 < oldest)
    }
}

/// Events after a sequence, oldest first.
#[derive(Debug, Clone)]
pub struct EventsPage {
    pub events: Vec<Event>,
    /// True when more events follow the last one returned.
    pub more: bool,
}

impl Db {
    pub async fn replay_window(&self) -> Result<ReplayWindow, DbError> {
        let (oldest, latest): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(sequence), MAX(sequence) FROM events")
                .fetch_one(self.pool())
                .await?;
        Ok(ReplayWindow { oldest, latest })
    }

    /// Events with a sequence above `after`, at most `limit`; with `user_id`, only those a
    /// stream of that user carries (addressed to the user, or broadcasts).
    pub async fn events_after(
        &self,
        after: i64,
        user_id: Option<&str>,
        limit: u32,
    ) -> Result<EventsPage, DbError> {
        let user_filter = if user_id.is_some() {
            "AND (n.user_id IS NULL OR n.user_id = $3)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e JOIN notifications n ON n.id = e.notification_id \
             WHERE e.sequence > $1 {user_filter} ORDER BY e.sequence LIMIT $2"
        );
        let mut select = sqlx::query_as::<_, EventRow>(AssertSqlSafe(sql))
            .bind(after)
            .bind(i64::from(limit) + 1);
        if let Some(user) = user_id {
            select = select.bind(user.to_owned());
        }
        let rows = select.fetch_all(self.pool()).await?;
        let more = rows.len() > limit as usize;
        let events = rows
            .into_iter()
            .take(limit as usize)
            .map(Event::try_from)
            .collect::<Result<_, _>>()?;
        Ok(EventsPage { events, more })
    }
}
