-- Issue 11: notifications planned in commit order. The planner reads the event log after its own
-- checkpoint and, in one transaction per batch, folds contact values, writes the delivery rows
-- and moves its checkpoint; stateless workers claim due rows under short leases.

-- Where the planner is in the global log.
CREATE TABLE IF NOT EXISTS notifier_checkpoints
(
    name       text PRIMARY KEY,
    tx_id      bigint NOT NULL DEFAULT 0,
    position   bigint NOT NULL DEFAULT 0,
    planned_at timestamptz
);

-- The contact fold is rebuilt by the planner from the start of the log (it was folded out of
-- bus redeliveries before, with gaps); delivery rows already planned are kept by their key.
DELETE FROM notifier_contacts;

-- Subscribed messages received from the bus, waiting until the planner has folded their account
-- up to `after_sequence` (or up to the head of the log, when it has none).
CREATE TABLE IF NOT EXISTS notification_requests
(
    seq            bigserial PRIMARY KEY,
    source_id      text        NOT NULL UNIQUE,
    account_id     text        NOT NULL,
    after_sequence bigint,
    params         text        NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- `next_attempt_ms` is the time a row is due: for a `sending` row it is the end of its lease.
UPDATE notification_deliveries SET next_attempt_ms = lease_until_ms
 WHERE state = 'sending' AND lease_until_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS notification_deliveries_due
    ON notification_deliveries (next_attempt_ms) WHERE state IN ('pending', 'sending');
