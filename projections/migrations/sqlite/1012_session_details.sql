-- What a person sees of their sessions (GET /v1/me/sessions, docs/adr/0009): when each was
-- last used and the client it was opened from. Older rows have none of these.
ALTER TABLE sessions ADD COLUMN last_used_at TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
