-- Scenario (f), webhook intake: the one statement the service runs to store a delivery, minus
-- the debug-log row (debug_log_batch_f.sql, generated per run). Each transaction stores a
-- distinct event (:run, the run's number, keeps the runs apart), like each delivery of the
-- measured run. pgbench variables are numbers only, so the key is built inside the statement
-- ('evt_pgb' || lpad(...)): the same round trip and index insert as a bound text parameter.
-- The other values are the service's for an `invoice.paid` event (stored `ignored`, processed
-- on arrival); :payload is the same body the service stores.
\set i :i + 1
\set n :run * 100000000000 + :client_id * :stride + :i
INSERT INTO "stripe_events" ("event_id", "event_type", "object_id", "livemode", "stripe_created_at", "payload", "status", "attempts", "received_at", "next_attempt_at", "processed_at", "error") VALUES ('evt_pgb' || lpad(:n::text, :evwidth, '0'), :evtype, 'in_pgb' || lpad(:n::text, :evwidth, '0'), :zero, :now, :payload, :evstatus, :zero, :now, :now, :now, NULL) ON CONFLICT ("event_id") DO NOTHING;
