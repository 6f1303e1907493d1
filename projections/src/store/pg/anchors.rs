//! Audit anchors on PostgreSQL: writers of anchors (of every process) queue on an advisory
//! transaction lock, so each plans on the anchor before it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};

use crate::audit::{Anchor, AnchoredHead, StreamHead};
use crate::db::ReadError;
use crate::store::sql::SqlStore;
use crate::store::{heads_from, to_i64, to_u64, AnchorStore, AnchorTx};

#[async_trait]
impl AnchorStore for SqlStore<Postgres> {
    async fn begin(&self) -> Result<Box<dyn AnchorTx>, ReadError> {
        let mut tx = self.0.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('audit_anchors'))")
            .execute(&mut *tx)
            .await?;
        Ok(Box::new(PgAnchorTx(tx)))
    }

    async fn latest(&self) -> Result<Option<Anchor>, ReadError> {
        let row: Option<(i64, DateTime<Utc>, String, i64, i64)> = sqlx::query_as(
            "SELECT id, created_at, root_hash, streams, events FROM audit_anchors \
              ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.0)
        .await?;
        Ok(
            row.map(|(id, created_at, root_hash, streams, events)| Anchor {
                id,
                created_at,
                root_hash,
                streams: to_u64(streams),
                events: to_u64(events),
            }),
        )
    }

    async fn heads(&self, up_to: i64) -> Result<BTreeMap<String, AnchoredHead>, ReadError> {
        latest_heads(&mut *self.0.acquire().await?, up_to).await
    }

    async fn head(&self, account_id: &str) -> Result<Option<AnchoredHead>, ReadError> {
        let row: Option<(i64, i64, String)> = sqlx::query_as(
            "SELECT anchor_id, sequence, chain_hash FROM audit_anchor_heads \
              WHERE account_id = $1 ORDER BY anchor_id DESC LIMIT 1",
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

struct PgAnchorTx(Transaction<'static, Postgres>);

#[async_trait]
impl AnchorTx for PgAnchorTx {
    async fn latest_heads(&mut self) -> Result<BTreeMap<String, AnchoredHead>, ReadError> {
        latest_heads(&mut self.0, i64::MAX).await
    }

    async fn store(
        mut self: Box<Self>,
        anchor: &Anchor,
        moved: &[StreamHead],
    ) -> Result<i64, ReadError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_anchors (created_at, root_hash, streams, events) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(anchor.created_at)
        .bind(&anchor.root_hash)
        .bind(to_i64(anchor.streams))
        .bind(to_i64(anchor.events))
        .fetch_one(&mut *self.0)
        .await?;
        for chunk in moved.chunks(5_000) {
            let text = |f: fn(&StreamHead) -> &str| chunk.iter().map(f).collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO audit_anchor_heads (anchor_id, account_id, sequence, chain_hash) \
                 SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::text[])",
            )
            .bind(id)
            .bind(text(|h| &h.account_id))
            .bind(chunk.iter().map(|h| to_i64(h.sequence)).collect::<Vec<_>>())
            .bind(text(|h| &h.chain_hash))
            .execute(&mut *self.0)
            .await?;
        }
        self.0.commit().await?;
        Ok(id)
    }
}

async fn latest_heads(
    conn: &mut PgConnection,
    up_to: i64,
) -> Result<BTreeMap<String, AnchoredHead>, ReadError> {
    let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT DISTINCT ON (account_id) account_id, anchor_id, sequence, chain_hash \
           FROM audit_anchor_heads WHERE anchor_id <= $1 \
          ORDER BY account_id, anchor_id DESC",
    )
    .bind(up_to)
    .fetch_all(conn)
    .await?;
    Ok(heads_from(rows))
}
