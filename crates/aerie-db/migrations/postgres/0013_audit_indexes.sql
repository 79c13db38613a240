-- The audit log is queried by who acted and by when, newest first.
CREATE INDEX audit_log_by_actor ON audit_log (actor_id, id);
CREATE INDEX audit_log_by_at ON audit_log (at);
