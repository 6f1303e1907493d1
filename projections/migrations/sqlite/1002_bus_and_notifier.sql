-- The relay's checkpoint and the notifier's state: operational state beside the read models.

-- Where the relay is in the global log (moved only after the bus acked every event before it).
CREATE TABLE IF NOT EXISTS relay_checkpoints
(
    name         TEXT PRIMARY KEY,
    tx_id        INTEGER NOT NULL DEFAULT 0,
    position     INTEGER NOT NULL DEFAULT 0,
    published_at TEXT
);

-- The notifier's own fold of each account's contact values, as of `last_sequence`: a notice
-- goes to the values as they were when its change took effect.
CREATE TABLE IF NOT EXISTS notifier_contacts
(
    account_id              TEXT PRIMARY KEY,
    last_sequence           INTEGER NOT NULL,
    contact_mobile          TEXT,
    contact_mobile_verified INTEGER NOT NULL DEFAULT 0,
    contact_email           TEXT,
    contact_email_verified  INTEGER NOT NULL DEFAULT 0,
    updated_at              TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- The delivery log: one row per (source, channel, recipient), planned when the source message
-- is first handled, so a redelivered message is never sent twice. `params` is the template's
-- JSON input: secrets in it stay sealed. Times used for scheduling are epoch milliseconds.
CREATE TABLE IF NOT EXISTS notification_deliveries
(
    source_id       TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    template        TEXT    NOT NULL,
    params          TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    lease_until_ms  INTEGER,
    last_error      TEXT,
    created_at      TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    sent_at         TEXT,
    dead_at         TEXT,
    PRIMARY KEY (source_id, channel, recipient)
);
-- The dead letters, for operations.
CREATE INDEX IF NOT EXISTS notification_deliveries_dead
    ON notification_deliveries (dead_at) WHERE state = 'dead';
