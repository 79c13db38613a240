-- The catalogue's ordered change log: one row per change that alters what search shows of a
-- plugin, written in the change's own transaction. Search indexes follow it by id.
CREATE TABLE catalog_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id INTEGER NOT NULL REFERENCES plugins (id),
    at INTEGER NOT NULL
);
