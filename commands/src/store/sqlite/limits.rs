//! Rate-limit counters on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::Lite;
use crate::limits::{LimitStore, RetryAfter, TargetLimit};
use crate::store::StoreError;

#[async_trait]
impl LimitStore for Lite {
    async fn admit_send(
        &self,
        target: &str,
        purpose: &str,
        limit: TargetLimit,
        now: DateTime<Utc>,
    ) -> Result<Result<(), RetryAfter>, StoreError> {
        let day_ago = now - Duration::days(1);
        let mut tx = self.0.begin().await?;
        // A write takes the database's single write lock at once, so check-then-insert is
        // exact; this one also forgets the sends that no longer count.
        sqlx::query("DELETE FROM code_sends WHERE target = ?1 AND purpose = ?2 AND sent_at <= ?3")
            .bind(target)
            .bind(purpose)
            .bind(day_ago)
            .execute(&mut *tx)
            .await?;
        let times: Vec<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT sent_at FROM code_sends WHERE target = ?1 AND purpose = ?2 \
               AND sent_at > ?3 ORDER BY sent_at",
        )
        .bind(target)
        .bind(purpose)
        .bind(day_ago)
        .fetch_all(&mut *tx)
        .await?;
        if let Err(retry) = limit.admits(&times, now) {
            return Ok(Err(retry));
        }
        sqlx::query("INSERT INTO code_sends (target, purpose, sent_at) VALUES (?1, ?2, ?3)")
            .bind(target)
            .bind(purpose)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn newest_send(
        &self,
        target: &str,
        purpose: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(sent_at) FROM code_sends WHERE target = ?1 AND purpose = ?2",
        )
        .bind(target)
        .bind(purpose)
        .fetch_one(&self.0)
        .await?)
    }

    async fn count_request(
        &self,
        client_ip: &str,
        route: &str,
        window: i64,
    ) -> Result<i64, StoreError> {
        let count: i32 = sqlx::query_scalar(
            "INSERT INTO ip_requests (client_ip, route, window_start, count) \
             VALUES (?1, ?2, ?3, 1) ON CONFLICT (client_ip, route, window_start) \
             DO UPDATE SET count = ip_requests.count + 1 RETURNING count",
        )
        .bind(client_ip)
        .bind(route)
        .bind(window)
        .fetch_one(&self.0)
        .await?;
        Ok(i64::from(count))
    }

    async fn prune_request_windows(&self, window: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM ip_requests WHERE window_start < ?1")
            .bind(window)
            .execute(&self.0)
            .await?;
        Ok(())
    }
}
