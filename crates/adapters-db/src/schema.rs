//! The tables, for both backends. Only types both share (Text, Integer, BigInt, Timestamp,
//! Nullable) so that one definition serves SQLite and PostgreSQL; the migrations in
//! `migrations/{sqlite,postgres}` must match it (a test compares the columns).

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        tenant_id -> Nullable<Text>,
        stripe_customer_id -> Nullable<Text>,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subscriptions (id) {
        id -> Text,
        organization_id -> Text,
        stripe_subscription_id -> Text,
        plan_code -> Text,
        status -> Text,
        trial_ends_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    stigg_customer_provisions (organization_id) {
        organization_id -> Text,
        stigg_customer_id -> Text,
        billing_id -> Text,
        provisioned_at -> Timestamp,
    }
}

diesel::table! {
    stigg_subscription_provisions (stripe_subscription_id) {
        stripe_subscription_id -> Text,
        organization_id -> Text,
        stigg_customer_id -> Nullable<Text>,
        stigg_subscription_id -> Nullable<Text>,
        provisioned_at -> Nullable<Timestamp>,
        // Unused since the `leases` table; dropped by a later migration.
        lease_holder -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    leases (lease_key) {
        lease_key -> Text,
        holder -> Text,
        expires_at -> Timestamp,
        taken_at -> Timestamp,
    }
}

diesel::table! {
    stigg_rate_buckets (bucket_key) {
        bucket_key -> Text,
        tat -> Timestamp,
    }
}

diesel::table! {
    debug_logs (id) {
        id -> BigInt,
        request_id -> Nullable<Text>,
        correlation_id -> Nullable<Text>,
        tenant_id -> Nullable<Text>,
        method -> Text,
        path -> Text,
        request_body -> Nullable<Text>,
        status -> Integer,
        error_code -> Nullable<Text>,
        duration_ms -> BigInt,
        created_at -> Timestamp,
        row_key -> Nullable<Text>,
    }
}

diesel::table! {
    stripe_events (event_id) {
        event_id -> Text,
        event_type -> Text,
        object_id -> Text,
        livemode -> Integer,
        stripe_created_at -> Nullable<Timestamp>,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        received_at -> Timestamp,
        next_attempt_at -> Timestamp,
        processed_at -> Nullable<Timestamp>,
        error -> Nullable<Text>,
        moves -> Nullable<Text>,
    }
}

diesel::table! {
    stigg_sync_states (stripe_subscription_id) {
        stripe_subscription_id -> Text,
        organization_id -> Text,
        stigg_customer_id -> Nullable<Text>,
        stigg_subscription_id -> Nullable<Text>,
        plan_code -> Nullable<Text>,
        status -> Nullable<Text>,
        trial_ends_at -> Nullable<Timestamp>,
        cancellation_date -> Nullable<Timestamp>,
        moves_applied -> BigInt,
        intent -> Nullable<Text>,
        last_synced_at -> Nullable<Timestamp>,
        last_event_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(subscriptions -> organizations (organization_id));
diesel::joinable!(stigg_customer_provisions -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    organizations,
    subscriptions,
    stigg_customer_provisions,
    stigg_subscription_provisions,
    debug_logs,
    leases,
    stripe_events,
    stigg_sync_states,
);
