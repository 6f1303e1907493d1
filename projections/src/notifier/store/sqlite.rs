//! [`NotifyStore`] on SQLite (the embedded store): one process, so a claim needs no row locks;
//! lists travel as JSON arrays (`json_each`) and batches as statements in one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::stored::Checkpoint;
use sqlx::{Row, SqlitePool};

use super::sql::{self, row, ROW};
use super::{
    contacts_of, split, to_i64, Attempt, DeadLetter, DeadPlan, DeliveryRow, NotifyStore,
    PendingRequest, PlannedBatch,
};
use crate::db::ReadError;
use crate::notifier::plan::Contacts;
use crate::store::sql::ensure_named_checkpoint;

pub(crate) struct SqliteNotifyStore(pub(crate) SqlitePool);

/// `values` as a JSON array, for `json_each`.
fn json_list(values: &[String]) -> String {
    serde_json::Value::from(values.to_vec()).to_string()
}

/// This dialect's spelling of the statements both run alike.
const STATEMENTS: sql::Statements = sql::Statements {
    checkpoint: "SELECT tx_id, position FROM notifier_checkpoints WHERE name = ?1",
    ensure_checkpoint:
        "INSERT INTO notifier_checkpoints (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
    reset_checkpoint: "UPDATE notifier_checkpoints SET tx_id = 0, position = 0 WHERE name = ?1",
    stored_sequence: "SELECT max(sequence) FROM events \
        WHERE aggregate_type = 'Account' AND aggregate_id = ?1",
    pending_requests: "SELECT source_id, account_id, after_sequence, params \
        FROM notification_requests ORDER BY seq LIMIT ?1",
    record_request:
        "INSERT INTO notification_requests (source_id, account_id, after_sequence, params) \
        SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS \
          (SELECT 1 FROM notification_deliveries WHERE source_id = ?1) \
        ON CONFLICT (source_id) DO NOTHING",
    insert_dead: "INSERT INTO notification_deliveries (source_id, channel, recipient, template, \
          params, state, attempts, next_attempt_ms, last_error, created_at, dead_at) \
        VALUES (?1, 'none', '', ?2, '{}', 'dead', 0, ?3, ?4, CURRENT_TIMESTAMP, \
          CURRENT_TIMESTAMP) \
        ON CONFLICT (source_id, channel, recipient) DO NOTHING",
    rows_of: "SELECT source_id, channel, recipient, template, params, state, \
        CAST(attempts AS BIGINT) AS attempts, next_attempt_ms, last_error \
        FROM notification_deliveries WHERE source_id = ?1 ORDER BY channel, recipient",
};

#[async_trait]
impl NotifyStore for SqliteNotifyStore {
    async fn checkpoint(&self, name: &str) -> Result<Checkpoint, ReadError> {
        crate::store::sql::named_checkpoint(&self.0, STATEMENTS.checkpoint, name).await
    }

    async fn contacts(
        &self,
        account_ids: &[String],
    ) -> Result<HashMap<String, Contacts>, ReadError> {
        let rows = sqlx::query(
            "SELECT account_id, last_sequence, contact_mobile, contact_mobile_verified, \
             contact_email, contact_email_verified FROM notifier_contacts \
             WHERE account_id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json_list(account_ids))
        .fetch_all(&self.0)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let fold = contacts_of(r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
                (r.get::<String, _>(0), fold)
            })
            .collect())
    }

    async fn reset(&self, name: &str) -> Result<(), ReadError> {
        sql::reset(&self.0, &STATEMENTS, name).await
    }

    async fn stored_sequence(&self, account_id: &str) -> Result<u64, ReadError> {
        sql::stored_sequence(&self.0, &STATEMENTS, account_id).await
    }

    async fn pending_requests(&self, limit: i64) -> Result<Vec<PendingRequest>, ReadError> {
        sql::pending_requests(&self.0, &STATEMENTS, limit).await
    }

    async fn commit_plan(&self, name: &str, batch: &PlannedBatch) -> Result<bool, ReadError> {
        let mut tx = self.0.begin().await?;
        ensure_named_checkpoint(&mut *tx, STATEMENTS.ensure_checkpoint, name, batch.from).await?;
        let moved = sqlx::query(
            "UPDATE notifier_checkpoints SET tx_id = ?2, position = ?3, \
             planned_at = CURRENT_TIMESTAMP WHERE name = ?1 AND tx_id = ?4 AND position = ?5",
        )
        .bind(name)
        .bind(batch.to.tx_id)
        .bind(batch.to.position)
        .bind(batch.from.tx_id)
        .bind(batch.from.position)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(false);
        }
        for (account_id, fold) in &batch.contacts {
            let (mobile, mobile_verified) = split(&fold.mobile);
            let (email, email_verified) = split(&fold.email);
            sqlx::query(
                "INSERT INTO notifier_contacts (account_id, last_sequence, contact_mobile, \
                   contact_mobile_verified, contact_email, contact_email_verified, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, CURRENT_TIMESTAMP) \
                 ON CONFLICT (account_id) DO UPDATE SET last_sequence = excluded.last_sequence, \
                   contact_mobile = excluded.contact_mobile, \
                   contact_mobile_verified = excluded.contact_mobile_verified, \
                   contact_email = excluded.contact_email, \
                   contact_email_verified = excluded.contact_email_verified, \
                   updated_at = CURRENT_TIMESTAMP",
            )
            .bind(account_id)
            .bind(to_i64(fold.last_sequence))
            .bind(mobile)
            .bind(mobile_verified)
            .bind(email)
            .bind(email_verified)
            .execute(&mut *tx)
            .await?;
        }
        for (source_id, planned) in &batch.deliveries {
            sqlx::query(
                "INSERT INTO notification_deliveries (source_id, channel, recipient, template, \
                   params, state, attempts, next_attempt_ms, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, CURRENT_TIMESTAMP) \
                 ON CONFLICT (source_id, channel, recipient) DO NOTHING",
            )
            .bind(source_id)
            .bind(planned.channel.as_str())
            .bind(&planned.recipient)
            .bind(planned.template.as_str())
            .bind(planned.params.to_string())
            .bind(batch.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        for dead in &batch.dead {
            sql::insert_dead(&mut *tx, &STATEMENTS, dead, batch.now_ms).await?;
        }
        if !batch.resolved_requests.is_empty() {
            sqlx::query(
                "DELETE FROM notification_requests \
                 WHERE source_id IN (SELECT value FROM json_each(?1))",
            )
            .bind(json_list(&batch.resolved_requests))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn record_request(&self, request: &PendingRequest) -> Result<(), ReadError> {
        sql::record_request(&self.0, &STATEMENTS, request).await
    }

    async fn record_dead(&self, dead: &DeadPlan, now_ms: i64) -> Result<(), ReadError> {
        sql::insert_dead(&self.0, &STATEMENTS, dead, now_ms).await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, ReadError> {
        let sql = format!(
            "UPDATE notification_deliveries \
                SET state = 'sending', attempts = attempts + 1, next_attempt_ms = ?2, \
                    lease_until_ms = ?2 \
              WHERE rowid IN (SELECT rowid FROM notification_deliveries \
                               WHERE state IN ('pending', 'sending') AND next_attempt_ms <= ?1 \
                               ORDER BY next_attempt_ms LIMIT ?3) \
             RETURNING {ROW}"
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms)
            .bind(lease_until_ms)
            .bind(limit)
            .fetch_all(&self.0)
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn extend_leases(
        &self,
        rows: &[DeliveryRow],
        lease_until_ms: i64,
    ) -> Result<(), ReadError> {
        let mut tx = self.0.begin().await?;
        for r in rows {
            sqlx::query(
                "UPDATE notification_deliveries SET next_attempt_ms = ?5, lease_until_ms = ?5 \
                 WHERE source_id = ?1 AND channel = ?2 AND recipient = ?3 AND attempts = ?4 \
                   AND state = 'sending'",
            )
            .bind(&r.source_id)
            .bind(&r.channel)
            .bind(&r.recipient)
            .bind(i64::from(r.attempts))
            .bind(lease_until_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn finish(&self, outcomes: &[(DeliveryRow, Attempt)]) -> Result<(), ReadError> {
        let mut tx = self.0.begin().await?;
        for (r, attempt) in outcomes {
            // `?5` / `?6`: the due time of a retry, the error of a retry or a dead letter.
            let (sql, at, error) = match attempt {
                Attempt::Sent => (
                    "UPDATE notification_deliveries SET state = 'sent', \
                       sent_at = CURRENT_TIMESTAMP, lease_until_ms = NULL, last_error = NULL \
                     WHERE source_id = ?1 AND channel = ?2 AND recipient = ?3 \
                       AND attempts = ?4 AND state = 'sending'",
                    None,
                    None,
                ),
                Attempt::Retry { at_ms, error } => (
                    "UPDATE notification_deliveries SET state = 'pending', \
                       next_attempt_ms = ?5, lease_until_ms = NULL, last_error = ?6 \
                     WHERE source_id = ?1 AND channel = ?2 AND recipient = ?3 \
                       AND attempts = ?4 AND state = 'sending'",
                    Some(*at_ms),
                    Some(error),
                ),
                Attempt::Dead { error } => (
                    "UPDATE notification_deliveries SET state = 'dead', \
                       dead_at = CURRENT_TIMESTAMP, lease_until_ms = NULL, last_error = ?5 \
                     WHERE source_id = ?1 AND channel = ?2 AND recipient = ?3 \
                       AND attempts = ?4 AND state = 'sending'",
                    None,
                    Some(error),
                ),
            };
            let mut query = sqlx::query(sql)
                .bind(&r.source_id)
                .bind(&r.channel)
                .bind(&r.recipient)
                .bind(i64::from(r.attempts));
            if let Some(at) = at {
                query = query.bind(at);
            }
            if let Some(error) = error {
                query = query.bind(error);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rows_of(&self, source_id: &str) -> Result<Vec<DeliveryRow>, ReadError> {
        sql::rows_of(&self.0, &STATEMENTS, source_id).await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ReadError> {
        sql::dead_letters(&self.0).await
    }

    async fn counts(&self) -> Result<Vec<(String, i64)>, ReadError> {
        sql::counts(&self.0).await
    }

    async fn exclusive(&self, _name: &str) -> Box<dyn Send> {
        Box::new(()) // the embedded store runs in one process
    }
}
