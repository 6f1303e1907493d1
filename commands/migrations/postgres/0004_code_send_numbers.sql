-- Code sends are numbered per (target, purpose): an admission decides on what it read and
-- claims the next number, and the unique key makes a concurrent admission decide again
-- (optimistic, as the event log is), instead of taking turns on a lock in a transaction.
ALTER TABLE code_sends ADD COLUMN IF NOT EXISTS seq bigint;
UPDATE code_sends
   SET seq = numbered.seq
  FROM (SELECT ctid, row_number() OVER (PARTITION BY target, purpose ORDER BY sent_at) AS seq
          FROM code_sends) AS numbered
 WHERE code_sends.ctid = numbered.ctid AND code_sends.seq IS NULL;
ALTER TABLE code_sends ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS code_sends_numbered ON code_sends (target, purpose, seq);
