DROP TABLE debug_logs;
DROP TABLE stigg_subscription_provisions;
DROP TABLE stigg_customer_provisions;
DROP TABLE subscriptions;
DROP TABLE organizations;
