//! Reset tokens by their SHA-256 (operational state): written when a token is issued, so that a
//! link works as soon as its email is sent.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

impl Store {
    pub async fn index_reset_token(
        &self,
        digest_hex: &str,
        account_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO reset_token_index (token_digest, account_id, expires_at) \
                           VALUES ($1, $2, $3) ON CONFLICT (token_digest) DO NOTHING";
        const PRUNE: &str =
            "DELETE FROM reset_token_index WHERE account_id = $1 AND token_digest <> $2";
        match self {
            Self::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(PRUNE)
                    .bind(account_id)
                    .bind(digest_hex)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(SQL)
                    .bind(digest_hex)
                    .bind(account_id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Self::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(&PRUNE.replace('$', "?"))
                    .bind(account_id)
                    .bind(digest_hex)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&SQL.replace('$', "?"))
                    .bind(digest_hex)
                    .bind(account_id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The account a reset token digest was issued to, if indexed.
    pub async fn reset_token_owner(&self, digest_hex: &str) -> Result<Option<String>, StoreError> {
        const SQL: &str = "SELECT account_id FROM reset_token_index WHERE token_digest = $1";
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(digest_hex)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(&SQL.replace('$', "?"))
                    .bind(digest_hex)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }
}
