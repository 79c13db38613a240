-- The registry: accounts, namespaces, tokens, keys, plugins, versions, downloads, audit.
-- Times are Unix milliseconds. Flags are integers (0/1) so that both back ends read alike.

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    password_hash TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    namespaces TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER,
    UNIQUE (user_id, name)
);

CREATE TABLE namespaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    require_signature INTEGER NOT NULL DEFAULT 1,
    private INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE namespace_members (
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (namespace_id, user_id)
);

CREATE TABLE publisher_keys (
    id INTEGER PRIMARY KEY,
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    added_by INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    UNIQUE (namespace_id, key_id)
);

CREATE TABLE plugins (
    id INTEGER PRIMARY KEY,
    namespace_id INTEGER NOT NULL REFERENCES namespaces (id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (namespace_id, name)
);

CREATE TABLE versions (
    id INTEGER PRIMARY KEY,
    plugin_id INTEGER NOT NULL REFERENCES plugins (id),
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    readme TEXT,
    signature TEXT,
    signing_key_id TEXT,
    publisher_id INTEGER NOT NULL REFERENCES users (id),
    published_at INTEGER NOT NULL,
    yanked INTEGER NOT NULL DEFAULT 0,
    deprecated TEXT,
    UNIQUE (plugin_id, version)
);

CREATE INDEX versions_by_digest ON versions (digest);

CREATE TABLE download_counts (
    version_id INTEGER NOT NULL REFERENCES versions (id),
    day INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (version_id, day)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor_id INTEGER REFERENCES users (id),
    token_id INTEGER,
    ip TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);

CREATE INDEX audit_log_by_target ON audit_log (target, id);
