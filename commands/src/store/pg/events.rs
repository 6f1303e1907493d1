//! The event log on PostgreSQL: postgres-es's `events` table plus `position` (insert order),
//! `tx_id` (the inserting transaction) and `recorded_at`.
//!
//! The global reader reads in `(tx_id, position)` order, and only from transactions below the
//! horizon `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with a smaller xid has
//! ended, so no row can later appear before the checkpoint (DESIGN §3.1). It runs as a single
//! statement outside any transaction, so the reader's own xid never caps the horizon.

use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::Pg;
use crate::store::sql::serialized;
use crate::store::{
    append_error, to_i64, to_u64, Checkpoint, EventStore, RecordedEvent, ResetIndexEntry,
    StoreError, StreamHead,
};

/// The columns every global or audit read selects, in the order [`recorded`] reads them.
const COLUMNS: &str = "tx_id::text::bigint AS tx_id, position, aggregate_type, aggregate_id, \
                       sequence, event_type, event_version, payload, metadata, recorded_at";

/// One multi-row statement, atomic on its own: a command costs one round trip instead of
/// postgres-es's four (BEGIN, one INSERT per event, COMMIT); the rows are exactly the ones
/// postgres-es would write.
const APPEND: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload, metadata) \
    SELECT $1::text, * FROM UNNEST($2::text[], $3::bigint[], $4::text[], $5::text[], \
    $6::text[]::json[], $7::text[]::json[])";

/// A reset token replaces the account's earlier ones: their rows go, so a stale link finds
/// nothing even before the aggregate is asked.
const PRUNE_RESETS: &str =
    "DELETE FROM reset_token_index WHERE account_id = $1 AND token_digest <> $2";
const INDEX_RESET: &str = "INSERT INTO reset_token_index (token_digest, account_id, expires_at) \
    VALUES ($1, $2, $3) ON CONFLICT (token_digest) DO NOTHING";

#[async_trait]
impl EventStore for Pg {
    async fn migrate(&self) -> Result<(), StoreError> {
        // The read side keeps its own migrations (versions from 1001) in the same ledger.
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_ignore_missing(true).run(&self.0).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.0).await?;
        Ok(())
    }

    async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("VACUUM ANALYZE events")
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        // Binds the sequence (postgres-es's `get_last_events` formats it into the SQL text,
        // which defeats the prepared-statement cache).
        let rows = sqlx::query(
            "SELECT sequence, event_type, event_version, payload, metadata FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(to_i64(after))
        .fetch_all(&self.0)
        .await?;
        rows.iter()
            .map(|row| serialized(aggregate_type, aggregate_id, row))
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }

    async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
        resets: &[ResetIndexEntry],
    ) -> Result<(), StoreError> {
        let column = |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let insert = sqlx::query(APPEND)
            .bind(aggregate_type)
            .bind(column(|e| e.aggregate_id.clone()))
            .bind(events.iter().map(|e| e.sequence as i64).collect::<Vec<_>>())
            .bind(column(|e| e.event_type.clone()))
            .bind(column(|e| e.event_version.clone()))
            .bind(column(|e| e.payload.to_string()))
            .bind(column(|e| e.metadata.to_string()));
        if resets.is_empty() {
            insert.execute(&self.0).await.map_err(append_error)?;
            return Ok(());
        }
        let mut tx = self.0.begin().await?;
        insert.execute(&mut *tx).await.map_err(append_error)?;
        for reset in resets {
            sqlx::query(PRUNE_RESETS)
                .bind(&reset.account_id)
                .bind(&reset.token_digest)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INDEX_RESET)
                .bind(&reset.token_digest)
                .bind(&reset.account_id)
                .bind(reset.expires_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_account_number(&self) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar("SELECT nextval('account_ids')")
            .fetch_one(&self.0)
            .await?;
        // The sequence starts at 100000000001 and is bounded above by 999999999999.
        Ok(to_u64(next))
    }

    async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // `ORDER BY events.…`: the select list aliases `tx_id` (cast to bigint), and an
        // unqualified ORDER BY would sort by that alias — a sequential scan and a sort per batch
        // instead of a walk of the (tx_id, position) index.
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
              WHERE (tx_id, position) > ($1::bigint::text::xid8, $2) \
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
              ORDER BY events.tx_id, events.position LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(checkpoint.tx_id)
            .bind(checkpoint.position)
            .bind(i64::from(limit))
            .fetch_all(&self.0)
            .await?;
        recorded_all(&rows)
    }

    async fn stream_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
              ORDER BY sequence LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(to_i64(after))
            .bind(i64::from(limit))
            .fetch_all(&self.0)
            .await?;
        recorded_all(&rows)
    }

    async fn streams_after(
        &self,
        aggregate_type: &str,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // The empty id sorts before every real one, and sequences are non-negative. The type is
        // an equality and the rest a row comparison, so that the index scan starts at the key
        // instead of filtering from the first row of the type.
        let (after_id, after_sequence) = after.map_or(("", -1), |(id, s)| (id, to_i64(s)));
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
              WHERE aggregate_type = $1 AND (aggregate_id, sequence) > ($2, $3) \
              ORDER BY aggregate_type, aggregate_id, sequence LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(after_id)
            .bind(after_sequence)
            .bind(i64::from(limit))
            .fetch_all(&self.0)
            .await?;
        recorded_all(&rows)
    }

    async fn stream_heads(&self, aggregate_type: &str) -> Result<Vec<StreamHead>, StoreError> {
        // A loose index scan: one probe of the primary key per stream for its id, one for its
        // last event, instead of reading every event.
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "WITH RECURSIVE ids (aggregate_id) AS ( \
                 (SELECT aggregate_id FROM events WHERE aggregate_type = $1 \
                   ORDER BY aggregate_id LIMIT 1) \
               UNION ALL \
                 SELECT (SELECT e.aggregate_id FROM events e \
                          WHERE e.aggregate_type = $1 AND e.aggregate_id > ids.aggregate_id \
                          ORDER BY e.aggregate_id LIMIT 1) \
                   FROM ids WHERE ids.aggregate_id IS NOT NULL) \
             SELECT last.aggregate_id, last.sequence, last.chain_hash FROM ids \
              CROSS JOIN LATERAL ( \
                 SELECT aggregate_id, sequence, metadata->>'chain_hash' AS chain_hash \
                   FROM events e WHERE e.aggregate_type = $1 \
                    AND e.aggregate_id = ids.aggregate_id \
                  ORDER BY sequence DESC LIMIT 1) AS last",
        )
        .bind(aggregate_type)
        .fetch_all(&self.0)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(aggregate_id, sequence, chain_hash)| StreamHead {
                aggregate_id,
                sequence: to_u64(sequence),
                chain_hash: chain_hash.unwrap_or_default(),
            })
            .collect())
    }

    async fn chain_hashes_at(
        &self,
        aggregate_type: &str,
        keys: &[(String, u64)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(5_000) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let sequences: Vec<i64> = chunk.iter().map(|(_, s)| to_i64(*s)).collect();
            let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
                "SELECT k.n, e.metadata->>'chain_hash' \
                   FROM UNNEST($2::text[], $3::bigint[]) WITH ORDINALITY AS k(id, seq, n) \
                   LEFT JOIN events e ON e.aggregate_type = $1 \
                        AND e.aggregate_id = k.id AND e.sequence = k.seq \
                  ORDER BY k.n",
            )
            .bind(aggregate_type)
            .bind(&ids)
            .bind(&sequences)
            .fetch_all(&self.0)
            .await?;
            found.extend(rows.into_iter().map(|(_, hash)| hash));
        }
        Ok(found)
    }

    async fn occurred_between(
        &self,
        aggregate_type: &str,
        since: &str,
        until: &str,
        after: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
              WHERE (tx_id, position) > ($2::bigint::text::xid8, $3) \
                AND aggregate_type = $1 \
                AND metadata->>'occurred_at' >= $4 AND metadata->>'occurred_at' < $5 \
              ORDER BY tx_id, position LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(after.tx_id)
            .bind(after.position)
            .bind(since)
            .bind(until)
            .bind(i64::from(limit))
            .fetch_all(&self.0)
            .await?;
        recorded_all(&rows)
    }
}

/// Rows of [`COLUMNS`] as recorded events.
fn recorded_all(rows: &[PgRow]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter()
        .map(recorded)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

fn recorded(row: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
    Ok(RecordedEvent {
        checkpoint: Checkpoint {
            tx_id: row.try_get("tx_id")?,
            position: row.try_get("position")?,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: to_u64(row.try_get("sequence")?),
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}
