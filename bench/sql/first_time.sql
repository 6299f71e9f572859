-- Scenario (d), first-time provisioning: every statement the service runs for one request, in
-- its order, including the one-row debug-log INSERT it waits for (at concurrency 1 each batch
-- holds one row). Each transaction takes the next never-provisioned subscription (:first + :i,
-- per client). The connection check of each checkout (`SELECT $1`) is `SELECT :one`; the first
-- one also builds the keys (\gset), as pgbench variables are numbers only.
\set i :i + 1
\set n :first + :client_id * :stride + :i
SELECT 'org_b' || lpad(:n::text, :width, '0') AS org, 'sub_B' || lpad(:n::text, :width, '0') AS sub, 'cus_B' || lpad(:n::text, :width, '0') AS cus \gset
SELECT "organizations"."id", "organizations"."name", "organizations"."tenant_id", "organizations"."stripe_customer_id", "organizations"."email" FROM "organizations" WHERE ("organizations"."id" = :org) LIMIT :one;
SELECT :one;
SELECT "subscriptions"."id", "subscriptions"."organization_id", "subscriptions"."stripe_subscription_id", "subscriptions"."plan_code", "subscriptions"."status", "subscriptions"."trial_ends_at" FROM "subscriptions" WHERE ("subscriptions"."stripe_subscription_id" = :sub) LIMIT :one;
SELECT :one;
SELECT "stigg_subscription_provisions"."stripe_subscription_id", "stigg_subscription_provisions"."organization_id", "stigg_subscription_provisions"."stigg_customer_id", "stigg_subscription_provisions"."stigg_subscription_id", "stigg_subscription_provisions"."provisioned_at" FROM "stigg_subscription_provisions" WHERE ("stigg_subscription_provisions"."stripe_subscription_id" = :sub) LIMIT :one;
SELECT :one;
SELECT "stigg_customer_provisions"."organization_id", "stigg_customer_provisions"."stigg_customer_id", "stigg_customer_provisions"."billing_id", "stigg_customer_provisions"."provisioned_at" FROM "stigg_customer_provisions" WHERE ("stigg_customer_provisions"."organization_id" = :org) LIMIT :one;
SELECT :one;
INSERT INTO "stigg_subscription_provisions" ("stripe_subscription_id", "organization_id", "updated_at") VALUES (:sub, :org, :now) ON CONFLICT ("stripe_subscription_id") DO NOTHING;
UPDATE "stigg_subscription_provisions" SET "lease_holder" = :holder, "lease_expires_at" = :later, "attempts" = ("stigg_subscription_provisions"."attempts" + :one), "updated_at" = :now WHERE ((("stigg_subscription_provisions"."stripe_subscription_id" = :sub) AND ("stigg_subscription_provisions"."provisioned_at" IS NULL)) AND (("stigg_subscription_provisions"."lease_holder" IS NULL) OR ("stigg_subscription_provisions"."lease_expires_at" < :now)));
SELECT :one;
INSERT INTO "stigg_customer_provisions" ("organization_id", "stigg_customer_id", "billing_id", "provisioned_at") VALUES (:org, :org, :cus, :now) ON CONFLICT ("organization_id") DO NOTHING;
SELECT :one;
INSERT INTO "stigg_subscription_provisions" ("stripe_subscription_id", "organization_id", "stigg_customer_id", "stigg_subscription_id", "provisioned_at", "lease_holder", "lease_expires_at", "last_error", "updated_at") VALUES (:sub, :org, :org, :sub, :now, DEFAULT, DEFAULT, DEFAULT, :now) ON CONFLICT ("stripe_subscription_id") DO UPDATE SET "organization_id" = :org, "stigg_customer_id" = :org, "stigg_subscription_id" = :sub, "provisioned_at" = :now, "lease_holder" = NULL, "lease_expires_at" = NULL, "last_error" = NULL, "updated_at" = :now;
SELECT :one;
INSERT INTO "debug_logs" ("request_id", "correlation_id", "tenant_id", "method", "path", "request_body", "status", "error_code", "duration_ms", "created_at") VALUES (:rid, :cid, NULL, :method, :path, :body, :status, NULL, :dur, :now);
