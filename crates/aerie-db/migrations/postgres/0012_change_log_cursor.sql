-- Which transaction wrote each change. Readers follow the log by transaction id up to the
-- oldest transaction still running when they read (the snapshot's horizon), so a change that
-- commits after a later one is read at the next pass instead of skipped.
ALTER TABLE catalog_changes ADD COLUMN tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX catalog_changes_by_tx ON catalog_changes (tx);
CREATE INDEX catalog_changes_by_at ON catalog_changes (at);

-- How far each change log was pruned: a reader whose position is older may have missed
-- changes, and rebuilds what it keeps instead.
CREATE TABLE change_log_pruned (
    log TEXT PRIMARY KEY,
    upto BIGINT NOT NULL
);

-- This database's identity, made once: an index built from another database (positions in
-- two databases of one PostgreSQL cluster are comparable, their contents are not) is rebuilt.
CREATE TABLE catalog_identity (id TEXT NOT NULL);
INSERT INTO catalog_identity (id) VALUES (md5(random()::text || clock_timestamp()::text));
