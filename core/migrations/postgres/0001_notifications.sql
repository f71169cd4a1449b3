-- Notifications and their append-only event log, which doubles as the transactional outbox.
-- Times are microseconds since the Unix epoch and ids are UUID text, so the same queries run on
-- PostgreSQL and on the embedded SQLite database.

CREATE TABLE events (
    sequence       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    notification_id TEXT NOT NULL,
    type           TEXT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    -- What the event says: for notification.created the message, type, userId and metadata;
    -- for status events the reason. Replaying a notification's events rebuilds its state.
    payload        TEXT NOT NULL,
    traceparent    TEXT,
    -- Outbox: NULL until the relay has published the event to Kafka.
    published_at   BIGINT
);
CREATE INDEX events_unpublished ON events (sequence) WHERE published_at IS NULL;
CREATE INDEX events_by_notification ON events (notification_id, sequence);

CREATE TABLE notifications (
    id          TEXT PRIMARY KEY,
    sequence    BIGINT NOT NULL UNIQUE,
    message     TEXT NOT NULL,
    type        TEXT NOT NULL,
    user_id     TEXT,
    metadata    TEXT,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, sequence);
CREATE INDEX notifications_by_type ON notifications (type, sequence);
CREATE INDEX notifications_by_created_at ON notifications (created_at);

-- Idempotency-Key header: the first request's notification, kept at least 24 hours.
CREATE TABLE idempotency_keys (
    key             TEXT PRIMARY KEY,
    request_hash    TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_by_created_at ON idempotency_keys (created_at);
