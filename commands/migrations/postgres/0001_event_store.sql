-- The events table of postgres-es (db/init.sql), plus the columns a gap-free global reader needs:
-- `position` (insert order), `tx_id` (the inserting transaction, for the xid8 horizon) and
-- `recorded_at`. Readers order by (tx_id, position) below pg_snapshot_xmin (DESIGN §3.1).
CREATE TABLE IF NOT EXISTS events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    position       bigint GENERATED ALWAYS AS IDENTITY,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX IF NOT EXISTS events_global_order ON events (tx_id, position);

-- Account ids: 12 digits, never reused, the first one 100000000001.
CREATE SEQUENCE IF NOT EXISTS account_ids
    AS bigint START WITH 100000000001 MINVALUE 100000000001 MAXVALUE 999999999999 NO CYCLE;

-- Values that belong to at most one account (login email, login mobile, server IP, instance id).
-- A claim is `pending` while its command runs and `held` once the command committed.
CREATE TABLE IF NOT EXISTS claims
(
    kind       text        NOT NULL,
    value      text        NOT NULL,
    owner      text        NOT NULL,
    state      text        NOT NULL CHECK (state IN ('pending', 'held')),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
CREATE INDEX IF NOT EXISTS claims_by_owner ON claims (owner);
