DROP INDEX debug_logs_row_key_idx;
ALTER TABLE debug_logs DROP COLUMN row_key;
