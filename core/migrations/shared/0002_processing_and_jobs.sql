-- The processor's side of the schema: idempotent event processing and the batch jobs.
-- Same conventions as 0001: UUID text, times in microseconds since the Unix epoch, so the
-- same queries run on PostgreSQL and SQLite. Keep postgres/ and sqlite/ in step.

-- Every consumed event id, written in the transaction that applies the event, so a
-- redelivered event changes nothing. Pruned by the cleanup job with the notifications.
CREATE TABLE processed_events (
    event_id     TEXT PRIMARY KEY,
    processed_at BIGINT NOT NULL
);
CREATE INDEX processed_events_by_processed_at ON processed_events (processed_at);

-- One row per batch job run (CronJob pods take their metrics with them; this stays).
-- status: running | succeeded | failed. A run whose process died stays 'running'.
CREATE TABLE job_runs (
    id          TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    status      TEXT NOT NULL,
    dry_run     BIGINT NOT NULL,
    -- JSON: what the run was asked to do (retention, period, batch size).
    parameters  TEXT NOT NULL,
    -- JSON object of counters, e.g. {"notificationsDeleted": 10}.
    counts      TEXT NOT NULL,
    error       TEXT,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX job_runs_by_started_at ON job_runs (started_at, id);

-- The report job's output: notifications created per hour, type and status. A re-run of a
-- period replaces that period's rows.
CREATE TABLE reports (
    hour         BIGINT NOT NULL,
    type         TEXT NOT NULL,
    status       TEXT NOT NULL,
    count        BIGINT NOT NULL,
    generated_at BIGINT NOT NULL,
    PRIMARY KEY (hour, type, status)
);

-- Per-user view kept by the user-sync job (see README, "user-sync"). last_seen_at is written
-- by the api-server, never by user-sync.
CREATE TABLE users (
    user_id              TEXT PRIMARY KEY,
    notification_count   BIGINT NOT NULL,
    unread_count         BIGINT NOT NULL,
    last_notification_at BIGINT,
    last_seen_at         BIGINT,
    synced_at            BIGINT NOT NULL
);
