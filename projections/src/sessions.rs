//! Bearer sessions: operational state beside the event store, not events. The opaque token is
//! stored only as its SHA-256; a session lives 12 hours from sign-in and can be revoked.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::db::{sqlite, ReadError, ReadStore};

/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub session_id: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The at-rest form of a bearer token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl ReadStore {
    /// Stores a new session for `token`.
    pub async fn create_session(&self, token: &str, session: &Session) -> Result<(), ReadError> {
        const SQL: &str =
            "INSERT INTO sessions (token_hash, session_id, account_id, created_at, expires_at) \
                           VALUES ($1, $2, $3, $4, $5)";
        let hash = token_hash(token);
        match self {
            Self::Postgres(pool) => {
                sqlx::query(SQL)
                    .bind(&hash)
                    .bind(&session.session_id)
                    .bind(&session.account_id)
                    .bind(session.created_at)
                    .bind(session.expires_at)
                    .execute(pool)
                    .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(&sqlite(SQL))
                    .bind(&hash)
                    .bind(&session.session_id)
                    .bind(&session.account_id)
                    .bind(session.created_at)
                    .bind(session.expires_at)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// The live (unexpired, unrevoked) session of `token` at `now`.
    pub async fn active_session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, ReadError> {
        const SQL: &str = "SELECT session_id, account_id, created_at, expires_at FROM sessions \
                           WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2";
        let hash = token_hash(token);
        macro_rules! session {
            ($row:expr) => {
                $row.map(|r| Session {
                    session_id: r.get("session_id"),
                    account_id: r.get("account_id"),
                    created_at: r.get("created_at"),
                    expires_at: r.get("expires_at"),
                })
            };
        }
        Ok(match self {
            Self::Postgres(pool) => {
                session!(
                    sqlx::query(SQL)
                        .bind(&hash)
                        .bind(now)
                        .fetch_optional(pool)
                        .await?
                )
            }
            Self::Sqlite(pool) => session!(
                sqlx::query(&sqlite(SQL))
                    .bind(&hash)
                    .bind(now)
                    .fetch_optional(pool)
                    .await?
            ),
        })
    }

    /// Revokes one session.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        self.revoke(
            "UPDATE sessions SET revoked_at = $2 WHERE session_id = $1 AND revoked_at IS NULL",
            session_id,
            now,
        )
        .await
    }

    /// Revokes every session of `account_id` but `keep` (a password change keeps the session
    /// that made it; a reset keeps none).
    pub async fn revoke_sessions_of(
        &self,
        account_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        const SQL: &str = "UPDATE sessions SET revoked_at = $2 \
                           WHERE account_id = $1 AND revoked_at IS NULL AND session_id <> $3";
        let keep = keep.unwrap_or("");
        match self {
            Self::Postgres(pool) => {
                sqlx::query(SQL)
                    .bind(account_id)
                    .bind(now)
                    .bind(keep)
                    .execute(pool)
                    .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(&sqlite(SQL))
                    .bind(account_id)
                    .bind(now)
                    .bind(keep)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn revoke(&self, sql: &str, id: &str, now: DateTime<Utc>) -> Result<(), ReadError> {
        match self {
            Self::Postgres(pool) => {
                sqlx::query(sql).bind(id).bind(now).execute(pool).await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(&sqlite(sql))
                    .bind(id)
                    .bind(now)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}
