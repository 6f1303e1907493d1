-- New-sign-in notices (docs/adr/0009): each sign-in asks whether the account had a session
-- from the same client lately, revoked or not, so the partial index on live sessions does not
-- serve it. The user agent is left out of the key (client-written, of any length).
CREATE INDEX IF NOT EXISTS sessions_account_ip ON sessions (account_id, ip);
