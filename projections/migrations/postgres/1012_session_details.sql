-- What a person sees of their sessions (GET /v1/me/sessions, docs/adr/0009): when each was
-- last used and the client it was opened from. Older rows have none of these.
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS last_used_at timestamptz;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS ip text;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS user_agent text;
