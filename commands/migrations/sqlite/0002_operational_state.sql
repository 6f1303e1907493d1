-- Operational state beside the event store (SPEC: not events).

-- Codes sent, per target and purpose: the 60-second cooldown and the 10-a-day cap of SPEC §2
-- hold across gateway processes because they are counted here.
CREATE TABLE IF NOT EXISTS code_sends
(
    target  TEXT        NOT NULL,
    purpose TEXT        NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS code_sends_by_target ON code_sends (target, purpose, sent_at);

-- Requests per client IP and route in fixed one-minute windows.
CREATE TABLE IF NOT EXISTS ip_requests
(
    client_ip TEXT   NOT NULL,
    route     TEXT   NOT NULL,
    window_start INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (client_ip, route, window_start)
);

-- Idempotency-Key records, scoped to caller, method and path, kept 24 hours.
CREATE TABLE IF NOT EXISTS idempotency_keys
(
    caller       TEXT        NOT NULL,
    method       TEXT        NOT NULL,
    path         TEXT        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash TEXT        NOT NULL,
    status       INTEGER,
    content_type TEXT,
    body         BLOB,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (caller, method, path, key)
);

-- Reset tokens by their SHA-256, so a link works the moment its email is sent (read-your-writes);
-- the account aggregate still decides whether the token is live.
CREATE TABLE IF NOT EXISTS reset_token_index
(
    token_digest TEXT PRIMARY KEY,
    account_id   TEXT        NOT NULL,
    expires_at   TEXT NOT NULL
);
