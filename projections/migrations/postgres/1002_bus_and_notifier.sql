-- The relay's checkpoint and the notifier's state: operational state beside the read models.

-- Where the relay is in the global log (moved only after the bus acked every event before it).
CREATE TABLE IF NOT EXISTS relay_checkpoints
(
    name         text PRIMARY KEY,
    tx_id        bigint NOT NULL DEFAULT 0,
    position     bigint NOT NULL DEFAULT 0,
    published_at timestamptz
);

-- The notifier's own fold of each account's contact values, as of `last_sequence`: a notice
-- goes to the values as they were when its change took effect.
CREATE TABLE IF NOT EXISTS notifier_contacts
(
    account_id              text PRIMARY KEY,
    last_sequence           bigint      NOT NULL,
    contact_mobile          text,
    contact_mobile_verified boolean     NOT NULL DEFAULT false,
    contact_email           text,
    contact_email_verified  boolean     NOT NULL DEFAULT false,
    updated_at              timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The delivery log: one row per (source, channel, recipient), planned when the source message
-- is first handled, so a redelivered message is never sent twice. `params` is the template's
-- JSON input: secrets in it stay sealed. Times used for scheduling are epoch milliseconds.
CREATE TABLE IF NOT EXISTS notification_deliveries
(
    source_id       text        NOT NULL,
    channel         text        NOT NULL,
    recipient       text        NOT NULL,
    template        text        NOT NULL,
    params          text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_ms bigint      NOT NULL DEFAULT 0,
    lease_until_ms  bigint,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at         timestamptz,
    dead_at         timestamptz,
    PRIMARY KEY (source_id, channel, recipient)
);
-- The dead letters, for operations.
CREATE INDEX IF NOT EXISTS notification_deliveries_dead
    ON notification_deliveries (dead_at) WHERE state = 'dead';
