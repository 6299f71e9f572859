-- The lifecycle sync, PostgreSQL flavour (the SQLite migration of the same name creates the
-- same tables, columns and indexes).

-- The inbox of Stripe's webhook events: one row per event id, stored before Stripe gets its
-- 200, then handled in the background until it ends 'applied', 'ignored' or 'failed'.
-- status: 'pending' | 'applied' | 'ignored' | 'failed'. livemode: 0 or 1.
-- moves: the Stigg calls the handling made, a JSON array; NULL before it ended.
CREATE TABLE stripe_events (
    event_id          TEXT PRIMARY KEY,
    event_type        TEXT NOT NULL,
    object_id         TEXT NOT NULL,
    livemode          INTEGER NOT NULL,
    stripe_created_at TIMESTAMP,
    payload           TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    received_at       TIMESTAMP NOT NULL,
    next_attempt_at   TIMESTAMP NOT NULL,
    processed_at      TIMESTAMP,
    error             TEXT,
    moves             TEXT
);
-- The inbox is read by status: the worker's poll (pending and due, grouped by object), a
-- subject's pending events, the failed list (paged by event id) and the counts. Status leads
-- each index rather than being a partial index's WHERE: the statements bind the status as a
-- parameter, and a partial index serves only a query that spells its predicate literally.
CREATE INDEX stripe_events_due_idx
    ON stripe_events (status, next_attempt_at, object_id, received_at);
CREATE INDEX stripe_events_object_idx ON stripe_events (object_id, status, received_at);
CREATE INDEX stripe_events_status_id_idx ON stripe_events (status, event_id);

-- What the sync last applied in Stigg, per Stripe subscription. The applied columns
-- (stigg_subscription_id to cancellation_date) stay NULL, and moves_applied 0, until the
-- first move succeeded. status: 'active' | 'canceled'. intent: the move about to be sent, as
-- JSON, NULL once its result is recorded. No foreign keys, as for
-- stigg_subscription_provisions: the row records what Stigg holds, whatever happens to our
-- other rows.
CREATE TABLE stigg_sync_states (
    stripe_subscription_id TEXT PRIMARY KEY,
    organization_id        TEXT NOT NULL,
    stigg_customer_id      TEXT,
    stigg_subscription_id  TEXT,
    plan_code              TEXT,
    status                 TEXT,
    trial_ends_at          TIMESTAMP,
    cancellation_date      TIMESTAMP,
    moves_applied          BIGINT NOT NULL DEFAULT 0,
    intent                 TEXT,
    last_synced_at         TIMESTAMP,
    last_event_id          TEXT,
    last_error             TEXT,
    updated_at             TIMESTAMP NOT NULL
);
