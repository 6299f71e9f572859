-- One lease per key, so that one caller at a time, on any instance, works on what the key
-- names. Keys are 'subscription:{stripe_subscription_id}' today: provisioning and every later
-- move of the subscription's Stigg state take the same one. A lease lapses at expires_at; a
-- released lease is deleted.
CREATE TABLE leases (
    lease_key  TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    taken_at   TIMESTAMP NOT NULL
);

-- Live provisioning leases of the previous release carry over. Its lease_holder and
-- lease_expires_at columns are no longer read or written; they stay while instances of the
-- previous release may still run beside this one, and a later migration drops them.
INSERT INTO leases (lease_key, holder, expires_at, taken_at)
SELECT 'subscription:' || stripe_subscription_id, lease_holder, lease_expires_at, updated_at
FROM stigg_subscription_provisions
WHERE lease_holder IS NOT NULL
  AND lease_expires_at IS NOT NULL
  AND provisioned_at IS NULL;
