//! What the gateway and the recovery flows ask of the read models.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::db::{sqlite, ReadError, ReadStore};
use crate::profile::{pg_profile, pg_server, sqlite_profile, sqlite_server, ProfileRow};

impl ReadStore {
    /// The profile row of `account_id`, with its servers.
    pub async fn profile_row(&self, account_id: &str) -> Result<Option<ProfileRow>, ReadError> {
        const PROFILE: &str = "SELECT * FROM profiles WHERE account_id = $1";
        const SERVERS: &str =
            "SELECT * FROM servers WHERE account_id = $1 ORDER BY assigned_at, instance_id";
        Ok(match self {
            Self::Postgres(pool) => {
                let Some(row) = sqlx::query(PROFILE)
                    .bind(account_id)
                    .fetch_optional(pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut profile = pg_profile(&row)?;
                for row in sqlx::query(SERVERS)
                    .bind(account_id)
                    .fetch_all(pool)
                    .await?
                {
                    profile.servers.push(pg_server(&row)?.1);
                }
                Some(profile)
            }
            Self::Sqlite(pool) => {
                let Some(row) = sqlx::query(&sqlite(PROFILE))
                    .bind(account_id)
                    .fetch_optional(pool)
                    .await?
                else {
                    return Ok(None);
                };
                let mut profile = sqlite_profile(&row)?;
                for row in sqlx::query(&sqlite(SERVERS))
                    .bind(account_id)
                    .fetch_all(pool)
                    .await?
                {
                    profile.servers.push(sqlite_server(&row)?.1);
                }
                Some(profile)
            }
        })
    }

    /// Accounts whose verified recovery mobile or login mobile is `e164`.
    pub async fn accounts_by_mobile(&self, e164: &str) -> Result<Vec<String>, ReadError> {
        self.ids(
            "SELECT account_id FROM profiles WHERE recovery_mobile = $1 OR login_mobile = $1 \
             ORDER BY account_id",
            e164,
        )
        .await
    }

    /// Accounts whose login email is `email` (at most one: login emails are claimed).
    pub async fn accounts_by_login_email(&self, email: &str) -> Result<Vec<String>, ReadError> {
        self.ids(
            "SELECT account_id FROM profiles WHERE login_email = $1 ORDER BY account_id",
            email,
        )
        .await
    }

    /// Accounts holding the assigned (not released) public IP `ip`.
    pub async fn accounts_by_server_ip(&self, ip: &str) -> Result<Vec<String>, ReadError> {
        self.ids(
            "SELECT DISTINCT account_id FROM servers WHERE public_ip = $1 ORDER BY account_id",
            ip,
        )
        .await
    }

    /// The account whose live reset token has this SHA-256.
    pub async fn account_by_reset_token(
        &self,
        digest_hex: &str,
    ) -> Result<Option<String>, ReadError> {
        Ok(self
            .ids(
                "SELECT account_id FROM profiles WHERE reset_token_digest = $1",
                digest_hex,
            )
            .await?
            .into_iter()
            .next())
    }

    /// Accounts whose password is older than `after_days` at `now` and whose reminder for that
    /// password was not sent, oldest first.
    pub async fn password_reminders_due(
        &self,
        now: DateTime<Utc>,
        after_days: i64,
        limit: i64,
    ) -> Result<Vec<String>, ReadError> {
        const SQL: &str = "SELECT account_id FROM profiles \
            WHERE password_set AND password_changed_at < $1 \
              AND (reminded_for IS NULL OR reminded_for <> password_changed_at) \
            ORDER BY password_changed_at LIMIT $2";
        let before = now - chrono::Duration::days(after_days);
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(&sqlite(SQL))
                    .bind(before)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// The sequence of `account_id` the profile reflects (0 when there is no row yet).
    pub async fn profile_sequence(&self, account_id: &str) -> Result<u64, ReadError> {
        const SQL: &str = "SELECT last_sequence FROM profiles WHERE account_id = $1";
        let found: Option<i64> = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(account_id)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(&sqlite(SQL))
                    .bind(account_id)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(found.map_or(0, |s| u64::try_from(s).unwrap_or_default()))
    }

    /// Read-your-writes: waits (at most `timeout`) until the profile of `account_id` reflects
    /// `sequence`. Returns whether it does.
    pub async fn wait_for(
        &self,
        account_id: &str,
        sequence: u64,
        timeout: Duration,
    ) -> Result<bool, ReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            if self.profile_sequence(account_id).await? >= sequence {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    async fn ids(&self, sql: &str, value: &str) -> Result<Vec<String>, ReadError> {
        Ok(match self {
            Self::Postgres(pool) => sqlx::query(sql)
                .bind(value)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect(),
            Self::Sqlite(pool) => sqlx::query(&sqlite(sql))
                .bind(value)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect(),
        })
    }
}
