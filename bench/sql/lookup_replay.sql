-- Scenario (c), replay of a provisioned subscription: the SQL the service runs for one request,
-- minus the debug-log row (debug_log_batch.sql, generated per run). pgbench variables are
-- numbers only, so each key is built inside its statement ('org_b' || lpad(...)): the same
-- round trip and the same index lookup as the service's bound text parameter.
\set n random(1, :replay)
SELECT "organizations"."id", "organizations"."name", "organizations"."tenant_id", "organizations"."stripe_customer_id", "organizations"."email" FROM "organizations" WHERE ("organizations"."id" = 'org_b' || lpad(:n::text, :width, '0')) LIMIT :one;
SELECT "subscriptions"."id", "subscriptions"."organization_id", "subscriptions"."stripe_subscription_id", "subscriptions"."plan_code", "subscriptions"."status", "subscriptions"."trial_ends_at" FROM "subscriptions" WHERE ("subscriptions"."stripe_subscription_id" = 'sub_B' || lpad(:n::text, :width, '0')) LIMIT :one;
SELECT "stigg_subscription_provisions"."stripe_subscription_id", "stigg_subscription_provisions"."organization_id", "stigg_subscription_provisions"."stigg_customer_id", "stigg_subscription_provisions"."stigg_subscription_id", "stigg_subscription_provisions"."provisioned_at" FROM "stigg_subscription_provisions" WHERE ("stigg_subscription_provisions"."stripe_subscription_id" = 'sub_B' || lpad(:n::text, :width, '0')) LIMIT :one;
