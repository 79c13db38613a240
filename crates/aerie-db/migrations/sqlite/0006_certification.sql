-- Certification of versions: submitted by a publisher, moved by server admins through review
-- to certified or rejected. A certified version carries the registry's signature over its
-- name, version and digest, so a host can check it without trusting this table.
CREATE TABLE certifications (
    version_id INTEGER PRIMARY KEY REFERENCES versions (id),
    -- submitted, in_review, certified or rejected.
    state TEXT NOT NULL,
    submitted_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    submitted_at INTEGER NOT NULL,
    reviewer_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    -- The reviewer's words: why it was rejected, or notes on a certification.
    reason TEXT,
    signature TEXT,
    signing_key_id TEXT,
    updated_at INTEGER NOT NULL
);

CREATE INDEX certifications_by_state ON certifications (state, updated_at);

CREATE TABLE certification_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id INTEGER NOT NULL REFERENCES versions (id),
    at INTEGER NOT NULL,
    actor_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    reason TEXT
);

CREATE INDEX certification_events_by_version ON certification_events (version_id, id);

-- A space that requires certification installs only certified versions.
ALTER TABLE spaces ADD COLUMN require_certified INTEGER NOT NULL DEFAULT 0;
