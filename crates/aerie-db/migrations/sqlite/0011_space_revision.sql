-- A space's revision: raised by every change to what the space runs, in the change's own
-- transaction and only if it is still the revision the change was planned from, so a change
-- planned from an older state is refused instead of written over a newer one. Replicas compare
-- it with the revision they run to find the spaces they must bring up to date.
ALTER TABLE spaces ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
-- When the revision was last raised (milliseconds since the epoch): how far behind a replica
-- that has not applied it yet is.
ALTER TABLE spaces ADD COLUMN changed_at BIGINT NOT NULL DEFAULT 0;
