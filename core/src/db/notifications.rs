//! Creating, listing and reading notifications.

use chrono::Utc;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyArguments;
use uuid::Uuid;

use super::rows::{NOTIFICATION_COLUMNS, NotificationRow};
use super::{Backend, Db, DbError, to_micros};
use crate::event::{Event, EventType};
use crate::notification::{NewNotification, Notification, NotificationType, Status};

/// An `Idempotency-Key` and a digest of the request it came with.
#[derive(Debug, Clone)]
pub struct RequestFingerprint {
    pub key: String,
    pub request_hash: String,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub notification: Notification,
    /// The `notification.created` event; `None` when `replayed`.
    pub event: Option<Event>,
    /// True when an earlier request with the same Idempotency-Key created it.
    pub replayed: bool,
}

/// Which notifications to list: newest first, at most `limit`, older than `before_sequence`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub limit: u32,
    pub before_sequence: Option<i64>,
    pub kind: Option<NotificationType>,
    pub user_id: Option<String>,
    /// Only what this user may see: broadcasts and the notifications addressed to them.
    pub visible_to: Option<String>,
}

/// A notification to store, with the `traceparent` of the request that asked for it.
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    pub new: &'a NewNotification,
    pub traceparent: Option<&'a str>,
}

impl Db {
    /// Stores a notification and its `notification.created` event in one transaction; the
    /// event waits in the outbox until the relay has handed it on. With an
    /// Idempotency-Key, a retry returns the first result instead.
    pub async fn create_notification(
        &self,
        new: &NewNotification,
        idempotency: Option<&RequestFingerprint>,
        traceparent: Option<&str>,
    ) -> Result<Created, DbError> {
        let id = Uuid::now_v7();
        let micros = to_micros(Utc::now());
        let mut tx = self.pool().begin().await?;
        if let Some(fingerprint) = idempotency {
            // Claim the key first: a concurrent request with the same key waits on this row
            // and then finds it taken.
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (key, request_hash, notification_id, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
            )
            .bind(&fingerprint.key)
            .bind(&fingerprint.request_hash)
            .bind(id.to_string())
            .bind(micros)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return self.replay_idempotent(fingerprint).await;
            }
        }
        let entry = NewEntry { new, traceparent };
        let mut created = insert_entries(self.backend(), &mut tx, &[(entry, id)], micros).await?;
        tx.commit().await?;
        created
            .pop()
            .ok_or_else(|| DbError::Corrupt("an insert returned no row".into()))
    }

    /// Stores several notifications in one transaction (group commit): one round of writes
    /// and one flush to disk for all of them. Results are in the order of `entries`.
    pub async fn create_notifications(
        &self,
        entries: &[NewEntry<'_>],
    ) -> Result<Vec<Created>, DbError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let micros = to_micros(Utc::now());
        let with_ids: Vec<(NewEntry<'_>, Uuid)> = entries
            .iter()
            .map(|entry| (*entry, Uuid::now_v7()))
            .collect();
        if self.backend() == Backend::Postgres {
            return insert_in_one_statement(self, &with_ids, micros).await;
        }
        let mut tx = self.pool().begin().await?;
        let created = insert_entries(self.backend(), &mut tx, &with_ids, micros).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn replay_idempotent(
        &self,
        fingerprint: &RequestFingerprint,
    ) -> Result<Created, DbError> {
        let (request_hash, notification_id): (String, String) = sqlx::query_as(
            "SELECT request_hash, notification_id FROM idempotency_keys WHERE key = $1",
        )
        .bind(&fingerprint.key)
        .fetch_one(self.pool())
        .await?;
        if request_hash != fingerprint.request_hash {
            return Err(DbError::IdempotencyKeyReused(fingerprint.key.clone()));
        }
        let id = Uuid::parse_str(&notification_id).map_err(|_| {
            DbError::Corrupt(format!("idempotency key notification {notification_id:?}"))
        })?;
        let notification = self.notification(id).await?.ok_or_else(|| {
            DbError::Corrupt(format!(
                "idempotency key {:?} names a missing notification",
                fingerprint.key
            ))
        })?;
        Ok(Created {
            notification,
            event: None,
            replayed: true,
        })
    }

    pub async fn notification(&self, id: Uuid) -> Result<Option<Notification>, DbError> {
        let row: Option<NotificationRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.map(Notification::try_from).transpose()
    }

    /// Newest first.
    pub async fn list_notifications(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<Notification>, DbError> {
        let mut conditions = Vec::new();
        let mut next = 1;
        let mut placeholder = || {
            let p = format!("${next}");
            next += 1;
            p
        };
        if query.before_sequence.is_some() {
            conditions.push(format!("n.sequence < {}", placeholder()));
        }
        if query.kind.is_some() {
            conditions.push(format!("n.type = {}", placeholder()));
        }
        if query.user_id.is_some() {
            conditions.push(format!("n.user_id = {}", placeholder()));
        }
        if query.visible_to.is_some() {
            let user = placeholder();
            conditions.push(format!("(n.user_id IS NULL OR n.user_id = {user})"));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n {filter} \
             ORDER BY n.sequence DESC LIMIT {}",
            placeholder()
        );
        let mut select = sqlx::query_as::<_, NotificationRow>(AssertSqlSafe(sql));
        if let Some(before) = query.before_sequence {
            select = select.bind(before);
        }
        if let Some(kind) = query.kind {
            select = select.bind(kind.as_str());
        }
        if let Some(user) = &query.user_id {
            select = select.bind(user.clone());
        }
        if let Some(user) = &query.visible_to {
            select = select.bind(user.clone());
        }
        let rows = select
            .bind(i64::from(query.limit))
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(Notification::try_from).collect()
    }
}

/// `($first, ..., $first+width-1), (...)` for `rows` rows; `repeat_last` repeats each row's
/// last placeholder once more (created_at doubles as updated_at).
fn value_rows(rows: usize, width: usize, repeat_last: bool) -> String {
    value_rows_with(rows, width, 1, repeat_last)
}

/// As [`value_rows`], numbering the placeholders from `start`.
fn value_rows_from(rows: usize, width: usize, start: usize) -> String {
    value_rows_with(rows, width, start, false)
}

fn value_rows_with(rows: usize, width: usize, start: usize, repeat_last: bool) -> String {
    (0..rows)
        .map(|row| {
            let first = start + row * width;
            let mut places: Vec<String> = (first..first + width).map(|i| format!("${i}")).collect();
            if repeat_last {
                places.push(format!("${}", first + width - 1));
            }
            format!("({})", places.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts the events and the notifications of `entries` inside `tx`.
async fn insert_entries(
    backend: Backend,
    tx: &mut sqlx::AnyConnection,
    entries: &[(NewEntry<'_>, Uuid)],
    micros: i64,
) -> Result<Vec<Created>, DbError> {
    let event_ids: Vec<Uuid> = entries.iter().map(|_| Uuid::now_v7()).collect();
    let values = value_rows(entries.len(), 6, false);
    let insert = format!(
        "INSERT INTO events (id, notification_id, type, occurred_at, payload, traceparent) \
         VALUES {values} RETURNING id, sequence"
    );
    // Each new event also waits in the outbox for the relay: on PostgreSQL in the same
    // statement, on SQLite (no data-modifying WITH) in a second one below.
    let sql = match backend {
        Backend::Postgres => format!(
            "WITH e AS ({insert}), o AS (INSERT INTO outbox (sequence) SELECT sequence FROM e) \
             SELECT id, sequence FROM e"
        ),
        Backend::Sqlite => insert,
    };
    let insert_events = sqlx::query_as(AssertSqlSafe(sql));
    let returned = bind_events(insert_events, entries, &event_ids, micros)
        .fetch_all(&mut *tx)
        .await?;
    let sequences = sequences_in_order(&event_ids, returned)?;
    if backend == Backend::Sqlite {
        let mut insert_outbox = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO outbox (sequence) VALUES {}",
            value_rows(sequences.len(), 1, false)
        )));
        for sequence in &sequences {
            insert_outbox = insert_outbox.bind(*sequence);
        }
        insert_outbox.execute(&mut *tx).await?;
    }

    let mut insert_notifications = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO notifications \
         (id, sequence, message, type, user_id, metadata, status, created_at, updated_at) \
         VALUES {}",
        value_rows(entries.len(), 8, true)
    )));
    for ((entry, id), sequence) in entries.iter().zip(&sequences) {
        insert_notifications = insert_notifications
            .bind(id.to_string())
            .bind(*sequence)
            .bind(entry.new.message.clone())
            .bind(entry.new.kind.as_str())
            .bind(entry.new.user_id.clone())
            .bind(metadata_text(entry))
            .bind(Status::Pending.as_str())
            .bind(micros);
    }
    insert_notifications.execute(&mut *tx).await?;
    into_created(entries, event_ids, sequences, micros)
}

/// PostgreSQL: the events, their outbox rows and the notifications in a single statement,
/// which is atomic on its own; one round trip instead of a transaction's five (the batch
/// path is the POST hot path, and a lane's round trips bound its commits per second).
async fn insert_in_one_statement(
    db: &Db,
    entries: &[(NewEntry<'_>, Uuid)],
    micros: i64,
) -> Result<Vec<Created>, DbError> {
    let event_ids: Vec<Uuid> = entries.iter().map(|_| Uuid::now_v7()).collect();
    let events = value_rows(entries.len(), 6, false);
    let notifications = value_rows_from(entries.len(), 7, entries.len() * 6 + 1);
    let sql = format!(
        "WITH e AS (\
           INSERT INTO events (id, notification_id, type, occurred_at, payload, traceparent) \
           VALUES {events} RETURNING id, notification_id, sequence), \
         o AS (INSERT INTO outbox (sequence) SELECT sequence FROM e), \
         n AS (INSERT INTO notifications \
           (id, sequence, message, type, user_id, metadata, status, created_at, updated_at) \
           SELECT v.id, e.sequence, v.message, v.type, v.user_id, v.metadata, v.status, \
                  v.created_at, v.created_at \
           FROM (VALUES {notifications}) AS v(id, message, type, user_id, metadata, status, created_at) \
           JOIN e ON e.notification_id = v.id) \
         SELECT id, sequence FROM e"
    );
    let mut insert = bind_events(
        sqlx::query_as(AssertSqlSafe(sql)),
        entries,
        &event_ids,
        micros,
    );
    for (entry, id) in entries {
        insert = insert
            .bind(id.to_string())
            .bind(entry.new.message.clone())
            .bind(entry.new.kind.as_str())
            .bind(entry.new.user_id.clone())
            .bind(metadata_text(entry))
            .bind(Status::Pending.as_str())
            .bind(micros);
    }
    let returned = insert.fetch_all(db.pool()).await?;
    let sequences = sequences_in_order(&event_ids, returned)?;
    into_created(entries, event_ids, sequences, micros)
}

type EventsInsert<'q> = sqlx::query::QueryAs<'q, sqlx::Any, (String, i64), AnyArguments>;

/// Binds the six columns of each entry's `notification.created` event, in `value_rows` order.
fn bind_events<'q>(
    mut insert: EventsInsert<'q>,
    entries: &[(NewEntry<'_>, Uuid)],
    event_ids: &[Uuid],
    micros: i64,
) -> EventsInsert<'q> {
    for ((entry, id), event_id) in entries.iter().zip(event_ids) {
        insert = insert
            .bind(event_id.to_string())
            .bind(id.to_string())
            .bind(EventType::Created.as_str())
            .bind(micros)
            .bind(event_payload(entry))
            .bind(entry.traceparent.map(str::to_owned));
    }
    insert
}

/// What a `notification.created` event says: replaying it rebuilds the notification.
fn event_payload(entry: &NewEntry<'_>) -> String {
    serde_json::json!({
        "message": entry.new.message,
        "type": entry.new.kind,
        "userId": entry.new.user_id,
        "metadata": entry.new.metadata,
    })
    .to_string()
}

fn metadata_text(entry: &NewEntry<'_>) -> Option<String> {
    entry
        .new
        .metadata
        .as_ref()
        .map(|m| serde_json::Value::Object(m.clone()).to_string())
}

/// The sequences the database gave the events, in the order of `event_ids`.
fn sequences_in_order(
    event_ids: &[Uuid],
    returned: Vec<(String, i64)>,
) -> Result<Vec<i64>, DbError> {
    let returned: std::collections::HashMap<String, i64> = returned.into_iter().collect();
    event_ids
        .iter()
        .map(|event_id| {
            returned.get(&event_id.to_string()).copied().ok_or_else(|| {
                DbError::Corrupt(format!("no sequence returned for event {event_id}"))
            })
        })
        .collect()
}

fn into_created(
    entries: &[(NewEntry<'_>, Uuid)],
    event_ids: Vec<Uuid>,
    sequences: Vec<i64>,
    micros: i64,
) -> Result<Vec<Created>, DbError> {
    // Times are stored with microsecond precision; answer with what a later read returns.
    let stored_time = super::from_micros(micros)?;
    Ok(entries
        .iter()
        .zip(event_ids)
        .zip(sequences)
        .map(|(((entry, id), event_id), sequence)| {
            let notification = Notification {
                id: *id,
                sequence,
                message: entry.new.message.clone(),
                kind: entry.new.kind,
                user_id: entry.new.user_id.clone(),
                metadata: entry.new.metadata.clone(),
                status: Status::Pending,
                created_at: stored_time,
                updated_at: stored_time,
            };
            let event = Event {
                id: event_id,
                sequence,
                kind: EventType::Created,
                notification_id: *id,
                occurred_at: stored_time,
                notification: notification.clone(),
            };
            Created {
                notification,
                event: Some(event),
                replayed: false,
            }
        })
        .collect())
}
