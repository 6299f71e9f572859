DROP TABLE stigg_sync_states;
DROP TABLE stripe_events;
