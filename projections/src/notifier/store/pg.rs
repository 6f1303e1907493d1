//! [`NotifyStore`] on PostgreSQL: batches travel as arrays (`UNNEST`), and workers claim due
//! rows with `FOR UPDATE SKIP LOCKED`, so any number of them share the log without waiting on
//! each other.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::stored::Checkpoint;
use sqlx::{PgPool, Row};

use super::sql::{self, row, ROW};
use super::{
    contacts_of, split, to_i64, Attempt, DeadLetter, DeadPlan, DeliveryRow, NotifyStore,
    PendingRequest, PlannedBatch,
};
use crate::db::{ReadError, SessionLock};
use crate::notifier::plan::Contacts;
use crate::store::sql::ensure_named_checkpoint;

pub(crate) struct PgNotifyStore(pub(crate) PgPool);

/// The key columns and attempt counts of `rows`, as arrays.
fn keys(rows: &[&DeliveryRow]) -> (Vec<String>, Vec<String>, Vec<String>, Vec<i32>) {
    let mut k = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        k.0.push(r.source_id.clone());
        k.1.push(r.channel.clone());
        k.2.push(r.recipient.clone());
        k.3.push(i32::try_from(r.attempts).unwrap_or(i32::MAX));
    }
    k
}

/// This dialect's spelling of the statements both run alike.
const STATEMENTS: sql::Statements = sql::Statements {
    checkpoint: "SELECT tx_id, position FROM notifier_checkpoints WHERE name = $1",
    ensure_checkpoint:
        "INSERT INTO notifier_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
    reset_checkpoint: "UPDATE notifier_checkpoints SET tx_id = 0, position = 0 WHERE name = $1",
    stored_sequence: "SELECT max(sequence) FROM events \
        WHERE aggregate_type = 'Account' AND aggregate_id = $1",
    pending_requests: "SELECT source_id, account_id, after_sequence, params \
        FROM notification_requests ORDER BY seq LIMIT $1",
    record_request:
        "INSERT INTO notification_requests (source_id, account_id, after_sequence, params) \
        SELECT $1, $2, $3, $4 WHERE NOT EXISTS \
          (SELECT 1 FROM notification_deliveries WHERE source_id = $1) \
        ON CONFLICT (source_id) DO NOTHING",
    insert_dead: "INSERT INTO notification_deliveries (source_id, channel, recipient, template, \
          params, state, attempts, next_attempt_ms, last_error, created_at, dead_at) \
        VALUES ($1, 'none', '', $2, '{}', 'dead', 0, $3, $4, CURRENT_TIMESTAMP, \
          CURRENT_TIMESTAMP) \
        ON CONFLICT (source_id, channel, recipient) DO NOTHING",
    rows_of: "SELECT source_id, channel, recipient, template, params, state, \
        CAST(attempts AS BIGINT) AS attempts, next_attempt_ms, last_error \
        FROM notification_deliveries WHERE source_id = $1 ORDER BY channel, recipient",
};

#[async_trait]
impl NotifyStore for PgNotifyStore {
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
             WHERE account_id = ANY($1)",
        )
        .bind(account_ids)
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
        // First: the row lock orders concurrent planners and the compare refuses a stale one.
        let moved = sqlx::query(
            "UPDATE notifier_checkpoints SET tx_id = $2, position = $3, \
             planned_at = CURRENT_TIMESTAMP WHERE name = $1 AND tx_id = $4 AND position = $5",
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
        if !batch.contacts.is_empty() {
            let mut c = (vec![], vec![], vec![], vec![], vec![], vec![]);
            for (account_id, fold) in &batch.contacts {
                let (mobile, mobile_verified) = split(&fold.mobile);
                let (email, email_verified) = split(&fold.email);
                c.0.push(account_id.clone());
                c.1.push(to_i64(fold.last_sequence));
                c.2.push(mobile);
                c.3.push(mobile_verified);
                c.4.push(email);
                c.5.push(email_verified);
            }
            sqlx::query(
                "INSERT INTO notifier_contacts (account_id, last_sequence, contact_mobile, \
                   contact_mobile_verified, contact_email, contact_email_verified, updated_at) \
                 SELECT a, s, m, mv, e, ev, CURRENT_TIMESTAMP \
                   FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::bool[], $5::text[], \
                               $6::bool[]) AS u(a, s, m, mv, e, ev) \
                 ON CONFLICT (account_id) DO UPDATE SET last_sequence = EXCLUDED.last_sequence, \
                   contact_mobile = EXCLUDED.contact_mobile, \
                   contact_mobile_verified = EXCLUDED.contact_mobile_verified, \
                   contact_email = EXCLUDED.contact_email, \
                   contact_email_verified = EXCLUDED.contact_email_verified, \
                   updated_at = CURRENT_TIMESTAMP",
            )
            .bind(c.0)
            .bind(c.1)
            .bind(c.2)
            .bind(c.3)
            .bind(c.4)
            .bind(c.5)
            .execute(&mut *tx)
            .await?;
        }
        if !batch.deliveries.is_empty() {
            let mut d = (vec![], vec![], vec![], vec![], vec![]);
            for (source_id, planned) in &batch.deliveries {
                d.0.push(source_id.clone());
                d.1.push(planned.channel.as_str());
                d.2.push(planned.recipient.clone());
                d.3.push(planned.template.as_str());
                d.4.push(planned.params.to_string());
            }
            sqlx::query(
                "INSERT INTO notification_deliveries (source_id, channel, recipient, template, \
                   params, state, attempts, next_attempt_ms, created_at) \
                 SELECT s, c, r, t, p, 'pending', 0, $6, CURRENT_TIMESTAMP \
                   FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
                        AS u(s, c, r, t, p) \
                 ON CONFLICT (source_id, channel, recipient) DO NOTHING",
            )
            .bind(d.0)
            .bind(d.1)
            .bind(d.2)
            .bind(d.3)
            .bind(d.4)
            .bind(batch.now_ms)
            .execute(&mut *tx)
            .await?;
        }
        for dead in &batch.dead {
            sql::insert_dead(&mut *tx, &STATEMENTS, dead, batch.now_ms).await?;
        }
        if !batch.resolved_requests.is_empty() {
            sqlx::query("DELETE FROM notification_requests WHERE source_id = ANY($1)")
                .bind(&batch.resolved_requests)
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
            "UPDATE notification_deliveries d \
                SET state = 'sending', attempts = d.attempts + 1, next_attempt_ms = $2, \
                    lease_until_ms = $2 \
               FROM (SELECT source_id, channel, recipient FROM notification_deliveries \
                      WHERE state IN ('pending', 'sending') AND next_attempt_ms <= $1 \
                      ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED) due \
              WHERE d.source_id = due.source_id AND d.channel = due.channel \
                AND d.recipient = due.recipient \
             RETURNING {}",
            ROW.replace(
                "source_id, channel, recipient",
                "d.source_id, d.channel, d.recipient"
            )
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
        let (s, c, r, a) = keys(&rows.iter().collect::<Vec<_>>());
        sqlx::query(
            "UPDATE notification_deliveries d SET next_attempt_ms = $5, lease_until_ms = $5 \
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[]) AS k(s, c, r, a) \
              WHERE d.source_id = k.s AND d.channel = k.c AND d.recipient = k.r \
                AND d.attempts = k.a AND d.state = 'sending'",
        )
        .bind(s)
        .bind(c)
        .bind(r)
        .bind(a)
        .bind(lease_until_ms)
        .execute(&self.0)
        .await?;
        Ok(())
    }

    async fn finish(&self, outcomes: &[(DeliveryRow, Attempt)]) -> Result<(), ReadError> {
        let sent: Vec<&DeliveryRow> = outcomes
            .iter()
            .filter(|(_, a)| *a == Attempt::Sent)
            .map(|(r, _)| r)
            .collect();
        let mut tx = self.0.begin().await?;
        if !sent.is_empty() {
            let (s, c, r, a) = keys(&sent);
            sqlx::query(
                "UPDATE notification_deliveries d SET state = 'sent', \
                   sent_at = CURRENT_TIMESTAMP, lease_until_ms = NULL, last_error = NULL \
                  FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int4[]) AS k(s, c, r, a) \
                 WHERE d.source_id = k.s AND d.channel = k.c AND d.recipient = k.r \
                   AND d.attempts = k.a AND d.state = 'sending'",
            )
            .bind(s)
            .bind(c)
            .bind(r)
            .bind(a)
            .execute(&mut *tx)
            .await?;
        }
        // Failures are few: one statement each.
        for (r, attempt) in outcomes {
            let attempts = i32::try_from(r.attempts).unwrap_or(i32::MAX);
            let query = match attempt {
                Attempt::Sent => continue,
                Attempt::Retry { at_ms, error } => sqlx::query(
                    "UPDATE notification_deliveries SET state = 'pending', \
                       next_attempt_ms = $5, lease_until_ms = NULL, last_error = $6 \
                     WHERE source_id = $1 AND channel = $2 AND recipient = $3 \
                       AND attempts = $4 AND state = 'sending'",
                )
                .bind(&r.source_id)
                .bind(&r.channel)
                .bind(&r.recipient)
                .bind(attempts)
                .bind(*at_ms)
                .bind(error),
                Attempt::Dead { error } => sqlx::query(
                    "UPDATE notification_deliveries SET state = 'dead', \
                       dead_at = CURRENT_TIMESTAMP, lease_until_ms = NULL, last_error = $5 \
                     WHERE source_id = $1 AND channel = $2 AND recipient = $3 \
                       AND attempts = $4 AND state = 'sending'",
                )
                .bind(&r.source_id)
                .bind(&r.channel)
                .bind(&r.recipient)
                .bind(attempts)
                .bind(error),
            };
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

    async fn exclusive(&self, name: &str) -> Box<dyn Send> {
        Box::new(SessionLock::acquire(&self.0, name).await)
    }
}
