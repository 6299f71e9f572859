-- The onboarding tables, PostgreSQL flavour. The SQLite migration of the same name creates
-- the same tables and columns; keep the two in step.
-- Timestamps are TIMESTAMP WITHOUT TIME ZONE holding UTC. Defaults use `now() AT TIME ZONE
-- 'utc'`, not CURRENT_TIMESTAMP, which would store the session's local time.

-- Written by the organization stories (1.1-1.2) and by external seeding tools.
CREATE TABLE organizations (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    tenant_id          TEXT,
    stripe_customer_id TEXT,
    email              TEXT,
    created_at         TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at         TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX organizations_tenant_id_idx ON organizations (tenant_id);
CREATE INDEX organizations_stripe_customer_id_idx ON organizations (stripe_customer_id);

-- Written by the trial story (1.3) and by external seeding tools.
CREATE TABLE subscriptions (
    id                     TEXT PRIMARY KEY,
    organization_id        TEXT NOT NULL REFERENCES organizations (id),
    stripe_subscription_id TEXT NOT NULL UNIQUE,
    plan_code              TEXT NOT NULL,
    status                 TEXT NOT NULL,
    trial_ends_at          TIMESTAMP,
    created_at             TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    updated_at             TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
CREATE INDEX subscriptions_organization_id_idx ON subscriptions (organization_id);

-- One row per organization whose customer exists in Stigg.
CREATE TABLE stigg_customer_provisions (
    organization_id   TEXT PRIMARY KEY REFERENCES organizations (id),
    stigg_customer_id TEXT NOT NULL,
    billing_id        TEXT NOT NULL,
    provisioned_at    TIMESTAMP NOT NULL
);

-- Provisioning of one Stripe subscription in Stigg: the lease that lets one caller at a time
-- work on it, then the result. No foreign key to subscriptions: the row tracks attempts for a
-- subscription id, whatever happens to the subscriptions row.
CREATE TABLE stigg_subscription_provisions (
    stripe_subscription_id TEXT PRIMARY KEY,
    organization_id        TEXT NOT NULL,
    stigg_customer_id      TEXT,
    stigg_subscription_id  TEXT,
    provisioned_at         TIMESTAMP,
    lease_holder           TEXT,
    lease_expires_at       TIMESTAMP,
    attempts               INTEGER NOT NULL DEFAULT 0,
    last_error             TEXT,
    updated_at             TIMESTAMP NOT NULL
);
CREATE INDEX stigg_subscription_provisions_organization_id_idx
    ON stigg_subscription_provisions (organization_id);

-- One row per API request (contract section 1, "Debug log").
CREATE TABLE debug_logs (
    id             BIGSERIAL PRIMARY KEY,
    request_id     TEXT,
    correlation_id TEXT,
    tenant_id      TEXT,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    request_body   TEXT,
    status         INTEGER NOT NULL,
    error_code     TEXT,
    duration_ms    BIGINT NOT NULL,
    created_at     TIMESTAMP NOT NULL
);
CREATE INDEX debug_logs_request_id_idx ON debug_logs (request_id);
CREATE INDEX debug_logs_created_at_idx ON debug_logs (created_at);
