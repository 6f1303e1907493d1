//! Bearer sessions: operational state beside the event store, not events. The opaque token is
//! stored only as its SHA-256; a session lives 12 hours from sign-in and can be revoked.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::db::{ReadError, ReadStore};

/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub session_id: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The last request made with it (to the minute), from its creation on.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address and user agent it was opened from, when known.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A live session as its bearer presents it, with the head of its account's stream read in the
/// same statement: the sequence of the account's last event (0 for none). A reader that holds
/// the account folded to that sequence (the executor's memo) answers without reading the stream
/// again: one round trip for an authenticated read instead of two (issue 16).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveSession {
    #[sqlx(flatten)]
    pub session: Session,
    pub account_head: i64,
}

/// How often a session's use is written: at most once a minute.
pub const TOUCH_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// The at-rest form of a bearer token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl ReadStore {
    /// Stores a new session for `token`.
    pub async fn create_session(&self, token: &str, session: &Session) -> Result<(), ReadError> {
        self.sessions.create(&token_hash(token), session).await
    }

    /// The live (unexpired, unrevoked) session of `token` at `now`.
    pub async fn active_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ActiveSession>, ReadError> {
        self.sessions.active(&token_hash(token), now).await
    }

    /// The live sessions of `account_id` at `now`, newest first.
    pub async fn live_sessions(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Session>, ReadError> {
        self.sessions.live(account_id, now).await
    }

    /// Records that `session` was used at `now`, at most once per [`TOUCH_EVERY`]: a session
    /// used within it is left as it is without a write.
    pub async fn touch_session(
        &self,
        session: &Session,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        let recent = now - TOUCH_EVERY;
        if session.last_used_at.is_some_and(|at| at >= recent) {
            return Ok(());
        }
        self.sessions.touch(&session.session_id, now, recent).await
    }

    /// Revokes the live session `session_id` when it belongs to `account_id`; false otherwise
    /// (unknown, someone else's, ended).
    pub async fn revoke_own_session(
        &self,
        account_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ReadError> {
        self.sessions.revoke_own(account_id, session_id, now).await
    }

    /// Whether `account_id` had a session from the client `ip` / `user_agent` created or last
    /// used at or after `since` (revoked ones count: signing out does not make a device new).
    pub async fn seen_client(
        &self,
        account_id: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<bool, ReadError> {
        self.sessions
            .seen_client(account_id, ip, user_agent, since)
            .await
    }

    /// Revokes one session.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        self.sessions.revoke(session_id, now).await
    }

    /// Revokes every session of `account_id` but `keep` (a password change keeps the session
    /// that made it; a reset keeps none).
    pub async fn revoke_sessions_of(
        &self,
        account_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        self.sessions
            .revoke_all_but(account_id, keep.unwrap_or(""), now)
            .await
    }
}
