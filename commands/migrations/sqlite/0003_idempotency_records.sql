-- Idempotency-Key records without secrets at rest (issue 13) and with a lease (issue 12):
-- the scope (caller, method, path, key) as its SHA-256, the request body as a keyed hash, the
-- recorded response body sealed (key id + ciphertext). `lease_until` is the in-flight request's
-- deadline: after it a retry with the same body takes the record over.
-- The old table kept bodies and reset-token paths in clear: it is dropped, not converted
-- (its rows cannot be sealed in SQL); a retry of a request made before the upgrade runs again.
DROP TABLE IF EXISTS idempotency_keys;
CREATE TABLE IF NOT EXISTS idempotency_records
(
    scope_digest   TEXT PRIMARY KEY,
    request_digest TEXT        NOT NULL,
    created_at     TEXT        NOT NULL,
    lease_until    TEXT        NOT NULL,
    status         INTEGER,
    content_type   TEXT,
    body_key_id    TEXT,
    sealed_body    TEXT
);
