-- A space's trust policy may require every version it installs to carry a publisher
-- signature that verifies with one of its namespace's registered keys.
ALTER TABLE spaces ADD COLUMN require_signed INTEGER NOT NULL DEFAULT 0;
