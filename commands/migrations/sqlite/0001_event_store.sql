-- The events table of sqlite-es. The embedded store has one writer at a time, so rowid order is
-- commit order: the global reader orders by rowid (its `position`). The primary key is sqlite-es's,
-- so a duplicate (aggregate, sequence) is SQLITE_CONSTRAINT_PRIMARYKEY, which sqlite-es reports as
-- an optimistic-lock conflict.
CREATE TABLE IF NOT EXISTS events
(
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 0),
    event_type     TEXT    NOT NULL,
    event_version  TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE TABLE IF NOT EXISTS account_ids
(
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    next INTEGER NOT NULL
);
INSERT OR IGNORE INTO account_ids (id, next) VALUES (1, 100000000001);

CREATE TABLE IF NOT EXISTS claims
(
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    owner      TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'held')),
    claimed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (kind, value)
);
CREATE INDEX IF NOT EXISTS claims_by_owner ON claims (owner);
