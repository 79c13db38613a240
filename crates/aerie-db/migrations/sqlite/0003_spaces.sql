-- Spaces (tenants): members, tokens, installations with their config and sealed secrets,
-- installation events, and each space's lockfile.

CREATE TABLE spaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    -- The space's data key, wrapped by the server master key named here.
    master_key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    -- The resolved versions of the space's plugins (TOML); empty before the first install.
    lockfile TEXT NOT NULL DEFAULT ''
);

CREATE TABLE space_members (
    space_id INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (space_id, user_id)
);

CREATE INDEX space_members_by_user ON space_members (user_id);

CREATE TABLE space_tokens (
    id INTEGER PRIMARY KEY,
    space_id INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    role TEXT NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER,
    UNIQUE (space_id, name)
);

CREATE TABLE installations (
    id INTEGER PRIMARY KEY,
    space_id INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    plugin TEXT NOT NULL,
    -- What the space asked for; NULL for a plugin installed only as a dependency.
    requirement TEXT,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    -- The version before the last update: what a rollback returns to.
    previous_version TEXT,
    previous_digest TEXT,
    -- active, disabled or failed.
    status TEXT NOT NULL,
    status_reason TEXT,
    -- JSON object, valid against the plugin's config schema.
    config TEXT NOT NULL,
    -- JSON: the permissions shown and consented to.
    granted TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (space_id, plugin)
);

CREATE TABLE installation_secrets (
    installation_id INTEGER NOT NULL REFERENCES installations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    sealed BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (installation_id, name)
);

-- Kept by (space, plugin), so an installation's history outlives its uninstall.
CREATE TABLE installation_events (
    id INTEGER PRIMARY KEY,
    space_id INTEGER NOT NULL REFERENCES spaces (id) ON DELETE CASCADE,
    plugin TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT,
    message TEXT
);

CREATE INDEX installation_events_by_plugin ON installation_events (space_id, plugin, id);
