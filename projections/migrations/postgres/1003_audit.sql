-- Audit anchors (SPEC §5, docs/adr/0005-audit.md). An anchor records every account stream's head
-- (account, sequence, chain hash) folded into one root hash. Heads are stored incrementally: an
-- anchor's rows hold only the streams whose head moved since the previous anchor, so the heads of
-- anchor N are, per account, the row with the greatest anchor_id <= N. Anchors only ever extend a
-- stream's anchored chain, so deleting the newest events of a stream is detected against them.
CREATE TABLE IF NOT EXISTS audit_anchors
(
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL,
    -- Lowercase hex SHA-256 over the canonical JSON of every anchored head, sorted by account.
    root_hash  text        NOT NULL,
    -- How many streams, and how many events (the sum of their sequences), the root covers.
    streams    bigint      NOT NULL,
    events     bigint      NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_anchor_heads
(
    anchor_id  bigint NOT NULL REFERENCES audit_anchors (id),
    account_id text   NOT NULL,
    sequence   bigint NOT NULL,
    chain_hash text   NOT NULL,
    -- Serves "the latest anchored head of an account" and "every account's latest head".
    PRIMARY KEY (account_id, anchor_id)
);
