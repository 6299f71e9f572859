-- Stigg's quota belongs to the API key, not to a process: on PostgreSQL every instance draws
-- from these buckets (per operation, per customer or subscription). One row per bucket: its
-- theoretical arrival time (GCRA), moved by one statement timed by the database's clock, so
-- no instance's clock counts. Idle rows (tat in the past) carry no state and may be deleted.
CREATE TABLE stigg_rate_buckets (
    bucket_key TEXT PRIMARY KEY,
    tat        TIMESTAMP NOT NULL
);
CREATE INDEX stigg_rate_buckets_tat ON stigg_rate_buckets (tat);
