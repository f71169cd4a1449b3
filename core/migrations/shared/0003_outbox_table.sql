-- The outbox moves out of the events table into a narrow table of its own. Publishing an
-- event used to update its (wide, four times indexed) events row; now it deletes one small
-- row here, which costs the database a fraction of that on every POST.
CREATE TABLE outbox (
    sequence BIGINT PRIMARY KEY
);
INSERT INTO outbox (sequence) SELECT sequence FROM events WHERE published_at IS NULL;
DROP INDEX events_unpublished;
ALTER TABLE events DROP COLUMN published_at;
