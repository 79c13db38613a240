-- Plugins' durable key-value state (`wasi:keyvalue`), scoped to an installation, kept across
-- restarts and versions.
CREATE TABLE plugin_state (
    scope TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, bucket, key)
);
