//! Idempotency records on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Lite;
use crate::idempotency::{IdempotencyRow, IdempotencyStore, StoredColumns, StoredResponse};
use crate::store::StoreError;

#[async_trait]
impl IdempotencyStore for Lite {
    async fn prune(&self, scope: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_records WHERE scope_digest = ?1 AND created_at < ?2")
            .bind(scope)
            .bind(before)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn insert(
        &self,
        scope: &str,
        request_digest: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO idempotency_records (scope_digest, request_digest, created_at, lease_until) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope_digest) DO NOTHING",
        )
        .bind(scope)
        .bind(request_digest)
        .bind(now)
        .bind(until)
        .execute(&self.0)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_over(
        &self,
        scope: &str,
        request_digest: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Of concurrent retries one wins: the row lock makes the others re-check the lease.
        let done = sqlx::query(
            "UPDATE idempotency_records SET lease_until = ?4 \
              WHERE scope_digest = ?1 AND request_digest = ?2 AND status IS NULL \
                AND lease_until <= ?3",
        )
        .bind(scope)
        .bind(request_digest)
        .bind(now)
        .bind(until)
        .execute(&self.0)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn get(&self, scope: &str) -> Result<Option<IdempotencyRow>, StoreError> {
        let row: Option<StoredColumns> = sqlx::query_as(
            "SELECT request_digest, status, content_type, body_key_id, sealed_body \
               FROM idempotency_records WHERE scope_digest = ?1",
        )
        .bind(scope)
        .fetch_optional(&self.0)
        .await?;
        Ok(row.map(IdempotencyRow::from_columns))
    }

    async fn record(
        &self,
        scope: &str,
        until: DateTime<Utc>,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_records \
                SET status = ?3, content_type = ?4, body_key_id = ?5, sealed_body = ?6 \
              WHERE scope_digest = ?1 AND lease_until = ?2 AND status IS NULL",
        )
        .bind(scope)
        .bind(until)
        .bind(i32::from(response.status))
        .bind(&response.content_type)
        .bind(&response.body.key_id)
        .bind(&response.body.ciphertext)
        .execute(&self.0)
        .await?;
        Ok(())
    }

    async fn forget(&self, scope: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_records \
              WHERE scope_digest = ?1 AND lease_until = ?2 AND status IS NULL",
        )
        .bind(scope)
        .bind(until)
        .execute(&self.0)
        .await?;
        Ok(())
    }
}
