-- Code sends are numbered per (target, purpose): an admission decides on what it read and
-- claims the next number, and the unique key makes a concurrent admission decide again
-- (optimistic, as the event log is), instead of taking the write lock first.
ALTER TABLE code_sends ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE code_sends
   SET seq = (SELECT COUNT(*) FROM code_sends AS earlier
               WHERE earlier.target = code_sends.target AND earlier.purpose = code_sends.purpose
                 AND (earlier.sent_at < code_sends.sent_at
                      OR (earlier.sent_at = code_sends.sent_at AND earlier.rowid <= code_sends.rowid)));
CREATE UNIQUE INDEX IF NOT EXISTS code_sends_numbered ON code_sends (target, purpose, seq);
