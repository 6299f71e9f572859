-- Scenario (b), 404 unknown organization: the SQL the service runs for one request, minus the
-- debug-log row (debug_log_batch.sql, generated per run). pgbench variables are numbers only,
-- so the connection check that deadpool runs on each checkout (`SELECT $1`) also builds the
-- keys of the next statements (\gset): the same round trip, one row.
\set n random(1, :orgs)
SELECT 'org_x' || lpad(:n::text, :width, '0') AS org, 'sub_X' || lpad(:n::text, :width, '0') AS sub \gset
SELECT "organizations"."id", "organizations"."name", "organizations"."tenant_id", "organizations"."stripe_customer_id", "organizations"."email" FROM "organizations" WHERE ("organizations"."id" = :org) LIMIT :one;
SELECT :one;
SELECT "subscriptions"."id", "subscriptions"."organization_id", "subscriptions"."stripe_subscription_id", "subscriptions"."plan_code", "subscriptions"."status", "subscriptions"."trial_ends_at" FROM "subscriptions" WHERE ("subscriptions"."stripe_subscription_id" = :sub) LIMIT :one;
