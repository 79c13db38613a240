-- Plugins' durable key-value state (`wasi:keyvalue`), scoped to an installation, kept across
-- restarts and versions. Keys sort bytewise ("C"), as on SQLite.
CREATE TABLE plugin_state (
    scope TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, bucket, key)
);
