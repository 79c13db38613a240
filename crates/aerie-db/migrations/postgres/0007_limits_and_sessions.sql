-- Publish budgets: a token bucket per namespace, shared by every replica. `tokens_milli` is in
-- thousandths of a publish, as of `refilled_at`.
CREATE TABLE publish_buckets (
    namespace_id BIGINT PRIMARY KEY REFERENCES namespaces (id) ON DELETE CASCADE,
    tokens_milli BIGINT NOT NULL,
    refilled_at BIGINT NOT NULL
);

-- Where and when each browser session was used, for the list of a user's sessions.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
