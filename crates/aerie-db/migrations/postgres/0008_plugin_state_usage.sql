-- Keys and bytes (keys and values) of plugins' key-value state per space: the part of a scope
-- before its first `/`. Quotas are checked against it in the transaction of each write.
CREATE TABLE plugin_state_usage (
    space TEXT PRIMARY KEY,
    keys BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);

INSERT INTO plugin_state_usage (space, keys, bytes)
SELECT split_part(scope, '/', 1), COUNT(*), SUM(octet_length(key) + octet_length(value))
FROM plugin_state
GROUP BY split_part(scope, '/', 1);
