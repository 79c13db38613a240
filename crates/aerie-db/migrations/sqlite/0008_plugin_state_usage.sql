-- On SQLite plugins' key-value state lives in a file of its own (migrations/sqlite-state), where
-- its usage per space is kept; this table keeps the two dialects' schemas alike.
CREATE TABLE plugin_state_usage (
    space TEXT PRIMARY KEY,
    keys INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
