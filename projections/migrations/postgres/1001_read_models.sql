-- Read models of the projector. Every row remembers the stream sequence it reflects, so a
-- replayed batch changes nothing. Rebuilds build `*_rebuild` copies and swap them in.
CREATE TABLE IF NOT EXISTS projection_checkpoints
(
    name           text PRIMARY KEY,
    tx_id          bigint      NOT NULL DEFAULT 0,
    position       bigint      NOT NULL DEFAULT 0,
    applied_at     timestamptz,
    last_recorded_at timestamptz
);

CREATE TABLE IF NOT EXISTS profiles
(
    account_id              text PRIMARY KEY,
    last_sequence           bigint      NOT NULL,
    registered_at           timestamptz NOT NULL,
    login_email             text,
    login_mobile            text,
    contact_mobile          text,
    contact_mobile_verified boolean     NOT NULL DEFAULT false,
    contact_email           text,
    contact_email_verified  boolean     NOT NULL DEFAULT false,
    recovery_mobile         text,
    recovery_email          text,
    pending_recovery_mobile text,
    pending_recovery_email  text,
    pending_login_email     text,
    password_set            boolean     NOT NULL DEFAULT false,
    password_changed_at     timestamptz,
    reminded_for            timestamptz,
    reset_token_digest      text,
    reset_token_expires_at  timestamptz
);
CREATE INDEX IF NOT EXISTS profiles_login_email ON profiles (login_email) WHERE login_email IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_login_mobile ON profiles (login_mobile) WHERE login_mobile IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_recovery_mobile ON profiles (recovery_mobile) WHERE recovery_mobile IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_reset_token ON profiles (reset_token_digest) WHERE reset_token_digest IS NOT NULL;
CREATE INDEX IF NOT EXISTS profiles_password_age ON profiles (password_changed_at) WHERE password_set;

CREATE TABLE IF NOT EXISTS servers
(
    account_id  text        NOT NULL,
    instance_id text        NOT NULL,
    public_ip   text        NOT NULL,
    assigned_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, instance_id)
);
CREATE INDEX IF NOT EXISTS servers_public_ip ON servers (public_ip);

-- Sessions: operational state, not events. The bearer token is stored only as its SHA-256.
CREATE TABLE IF NOT EXISTS sessions
(
    token_hash  text PRIMARY KEY,
    session_id  text        NOT NULL UNIQUE,
    account_id  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account_id) WHERE revoked_at IS NULL;
