-- Plugins' durable key-value state on SQLite, in a file of its own: plugins write it at request
-- rates, and on SQLite every writer of a file waits for the one before, so the registry's own
-- writes (publishes, installs) never queue behind a plugin's.
CREATE TABLE plugin_state (
    scope TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, bucket, key)
);

-- Keys and bytes (keys and values) held per space: the part of a scope before its first `/`.
CREATE TABLE plugin_state_usage (
    space TEXT PRIMARY KEY,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
