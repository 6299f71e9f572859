-- The shared Stigg budget (see the PostgreSQL migration). SQLite is one process: it keeps the
-- in-process limiter, and the table stays empty; it exists so both backends share one schema.
CREATE TABLE stigg_rate_buckets (
    bucket_key TEXT PRIMARY KEY,
    tat        TIMESTAMP NOT NULL
);
CREATE INDEX stigg_rate_buckets_tat ON stigg_rate_buckets (tat);
