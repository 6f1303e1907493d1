//! Audit anchors on SQLite. Anchor times are stored as RFC 3339 text with microseconds, the
//! form the published message carries.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::{Sqlite, SqlitePool};

use crate::audit::{Anchor, AnchoredHead, StreamHead};
use crate::db::ReadError;
use crate::store::sql::SqlStore;
use crate::store::{heads_from, to_i64, to_u64, AnchorStore, AnchorTx};

#[async_trait]
impl AnchorStore for SqlStore<Sqlite> {
    async fn begin(&self) -> Result<Box<dyn AnchorTx>, ReadError> {
        // The process serialises anchors (`audit::anchors`); the transaction itself opens in
        // `store`, with its first statement a write, so it never upgrades a stale read.
        Ok(Box::new(LiteAnchorTx(self.0.clone())))
    }

    async fn latest(&self) -> Result<Option<Anchor>, ReadError> {
        let row: Option<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT id, created_at, root_hash, streams, events FROM audit_anchors \
              ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.0)
        .await?;
        Ok(
            row.map(|(id, created_at, root_hash, streams, events)| Anchor {
                id,
                created_at: DateTime::parse_from_rfc3339(&created_at)
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_default(),
                root_hash,
                streams: to_u64(streams),
                events: to_u64(events),
            }),
        )
    }

    async fn heads(&self, up_to: i64) -> Result<BTreeMap<String, AnchoredHead>, ReadError> {
        latest_heads(&self.0, up_to).await
    }

    async fn head(&self, account_id: &str) -> Result<Option<AnchoredHead>, ReadError> {
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT anchor_id, sequence, chain_hash FROM audit_anchor_heads \
              WHERE account_id = ?1 ORDER BY anchor_id DESC LIMIT 1",
        )
        .bind(account_id)
        .fetch_optional(&self.0)
        .await?;
        Ok(row.map(|(anchor_id, sequence, chain_hash)| AnchoredHead {
            anchor_id,
            sequence: to_u64(sequence),
            chain_hash,
        }))
    }
}

struct LiteAnchorTx(SqlitePool);

#[async_trait]
impl AnchorTx for LiteAnchorTx {
    async fn latest_heads(&mut self) -> Result<BTreeMap<String, AnchoredHead>, ReadError> {
        latest_heads(&self.0, i64::MAX).await
    }

    async fn store(
        self: Box<Self>,
        anchor: &Anchor,
        moved: &[StreamHead],
    ) -> Result<i64, ReadError> {
        let mut tx = self.0.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_anchors (created_at, root_hash, streams, events) \
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(
            anchor
                .created_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        )
        .bind(&anchor.root_hash)
        .bind(to_i64(anchor.streams))
        .bind(to_i64(anchor.events))
        .fetch_one(&mut *tx)
        .await?;
        const ROWS_PER_STATEMENT: usize = 200; // 4 parameters each
        for chunk in moved.chunks(ROWS_PER_STATEMENT) {
            let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO audit_anchor_heads (anchor_id, account_id, sequence, chain_hash) \
                 VALUES {values}"
            );
            let mut insert = sqlx::query(&sql);
            for head in chunk {
                insert = insert
                    .bind(id)
                    .bind(head.account_id.as_str())
                    .bind(to_i64(head.sequence))
                    .bind(head.chain_hash.as_str());
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(id)
    }
}

async fn latest_heads(
    pool: &SqlitePool,
    up_to: i64,
) -> Result<BTreeMap<String, AnchoredHead>, ReadError> {
    // SQLite takes the bare columns from the row holding the max().
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT account_id, max(anchor_id) AS anchor_id, sequence, chain_hash \
           FROM audit_anchor_heads WHERE anchor_id <= ?1 GROUP BY account_id",
    )
    .bind(up_to)
    .fetch_all(pool)
    .await?;
    Ok(heads_from(rows))
}
