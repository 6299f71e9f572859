-- A key per request's row, so that a write whose outcome is unknown (the connection lost
-- after the INSERT was sent) can be retried with ON CONFLICT DO NOTHING and never leave a
-- second row. Rows written before this migration have none (NULLs never conflict).
ALTER TABLE debug_logs ADD COLUMN row_key TEXT;
CREATE UNIQUE INDEX debug_logs_row_key_idx ON debug_logs (row_key);
