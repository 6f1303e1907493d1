-- Read models of the projector. Every row remembers the stream sequence it reflects, so a
-- replayed batch changes nothing. Rebuilds build `*_rebuild` copies and swap them in.
CREATE TABLE IF NOT EXISTS projection_checkpoints
(
    name           TEXT PRIMARY KEY,
    tx_id          INTEGER      NOT NULL DEFAULT 0,
    position       INTEGER      NOT NULL DEFAULT 0,
    applied_at     TEXT,
    last_recorded_at TEXT
);

CREATE TABLE IF NOT EXISTS profiles
(
    account_id              TEXT PRIMARY KEY,
    last_sequence           INTEGER      NOT NULL,
    registered_at           TEXT NOT NULL,
    login_email             TEXT,
    login_mobile            TEXT,
    contact_mobile          TEXT,
    contact_mobile_verified INTEGER     NOT NULL DEFAULT 0,
    contact_email           TEXT,
    contact_email_verified  INTEGER     NOT NULL DEFAULT 0,
    recovery_mobile         TEXT,
    recovery_email          TEXT,
    pending_recovery_mobile TEXT,
    pending_recovery_email  TEXT,
    pending_login_email     TEXT,
    password_set            INTEGER     NOT NULL DEFAULT 0,
    password_changed_at     TEXT,
    reminded_for            TEXT,
    reset_token_digest      TEXT,
    reset_token_expires_at  TEXT
);
CREATE INDEX IF NOT EXISTS profiles_login_email ON profiles (login_email) WHERE login_email IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_login_mobile ON profiles (login_mobile) WHERE login_mobile IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_recovery_mobile ON profiles (recovery_mobile) WHERE recovery_mobile IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_reset_token ON profiles (reset_token_digest) WHERE reset_token_digest IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_password_age ON profiles (password_changed_at) WHERE password_set = 1;

CREATE TABLE IF NOT EXISTS servers
(
    account_id  TEXT        NOT NULL,
    instance_id TEXT        NOT NULL,
    public_ip   TEXT        NOT NULL,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (account_id, instance_id)
);
CREATE INDEX IF NOT EXISTS servers_public_ip ON servers (public_ip);

-- Sessions: operational state, not events. The bearer token is stored only as its SHA-256.
CREATE TABLE IF NOT EXISTS sessions
(
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT        NOT NULL UNIQUE,
    account_id  TEXT        NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account_id) WHERE revoked_at IS NULL;
