-- SQLite runs one writer at a time, so change ids commit in order and readers follow the log
-- by id. Old changes are pruned by age.
CREATE INDEX catalog_changes_by_at ON catalog_changes (at);

-- How far each change log was pruned: a reader whose position is older may have missed
-- changes, and rebuilds what it keeps instead.
CREATE TABLE change_log_pruned (
    log TEXT PRIMARY KEY,
    upto INTEGER NOT NULL
);

-- This database's identity, made once: an index built from another database is rebuilt.
CREATE TABLE catalog_identity (id TEXT NOT NULL);
INSERT INTO catalog_identity (id) VALUES (lower(hex(randomblob(16))));
