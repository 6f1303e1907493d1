//! Claims on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::Lite;
use crate::claims::{ClaimKind, ClaimRow, ClaimStore};
use crate::store::StoreError;

#[async_trait]
impl ClaimStore for Lite {
    async fn insert_pending(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO claims (kind, value, owner, state) VALUES (?1, ?2, ?3, 'pending') \
             ON CONFLICT (kind, value) DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(owner)
        .execute(&self.0)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn claim_row(
        &self,
        kind: ClaimKind,
        value: &str,
        stale_after: Duration,
    ) -> Result<Option<ClaimRow>, StoreError> {
        let row = sqlx::query(
            "SELECT owner, state = 'held' AS held, \
                    julianday(claimed_at) < julianday('now') - (?3 / 86400.0) AS stale \
               FROM claims WHERE kind = ?1 AND value = ?2",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(stale_after.as_secs_f64())
        .fetch_optional(&self.0)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClaimRow {
            owner: row.try_get("owner")?,
            held: row.try_get("held")?,
            stale: row.try_get("stale")?,
        }))
    }

    async fn mark_held(&self, kind: ClaimKind, value: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE claims SET state = 'held' WHERE kind = ?1 AND value = ?2 AND owner = ?3",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(owner)
        .execute(&self.0)
        .await?;
        Ok(())
    }

    async fn delete(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
        pending_only: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM claims WHERE kind = ?1 AND value = ?2 AND owner = ?3 \
               AND (NOT ?4 OR state = 'pending')",
        )
        .bind(kind.as_str())
        .bind(value)
        .bind(owner)
        .bind(pending_only)
        .execute(&self.0)
        .await?;
        Ok(())
    }
}
