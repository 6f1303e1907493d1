//! The event log on SQLite: sqlite-es's `events` table plus `recorded_at`. One writer at a time,
//! so rowid order is commit order: the global reader walks rowids (its checkpoint's `position`;
//! `tx_id` is always 0).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::Lite;
use crate::store::sql::serialized;
use crate::store::{
    append_error, to_i64, to_u64, Checkpoint, EventStore, RecordedEvent, ResetIndexEntry,
    StoreError, StreamHead,
};

/// The columns every global or audit read selects, in the order [`recorded`] reads them.
const COLUMNS: &str = "0 AS tx_id, rowid AS position, aggregate_type, aggregate_id, \
                       sequence, event_type, event_version, payload, metadata, recorded_at";

#[async_trait]
impl EventStore for Lite {
    async fn migrate(&self) -> Result<(), StoreError> {
        // The read side keeps its own migrations (versions from 1001) in the same ledger.
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.set_ignore_missing(true).run(&self.0).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.0).await?;
        Ok(())
    }

    async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE events").execute(&self.0).await?;
        Ok(())
    }

    async fn stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT sequence, event_type, event_version, payload, metadata FROM events \
              WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3 ORDER BY sequence",
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
        // The database is local: one statement per row costs no round trips. The primary key
        // refuses a sequence another writer took first.
        let mut tx = self.0.begin().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(aggregate_type)
            .bind(&event.aggregate_id)
            .bind(to_i64(event.sequence as u64))
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(event.payload.to_string())
            .bind(event.metadata.to_string())
            .execute(&mut *tx)
            .await
            .map_err(append_error)?;
        }
        for reset in resets {
            // A new token replaces the account's earlier ones.
            sqlx::query(
                "DELETE FROM reset_token_index WHERE account_id = ?1 AND token_digest <> ?2",
            )
            .bind(&reset.account_id)
            .bind(&reset.token_digest)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO reset_token_index (token_digest, account_id, expires_at) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (token_digest) DO NOTHING",
            )
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
        let next: i64 = sqlx::query_scalar(
            "UPDATE account_ids SET next = next + 1 WHERE id = 1 RETURNING next - 1",
        )
        .fetch_one(&self.0)
        .await?;
        Ok(to_u64(next))
    }

    async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2");
        let rows = sqlx::query(&sql)
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
              WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3 \
              ORDER BY sequence LIMIT ?4"
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
        // The empty id sorts before every real one, and sequences are non-negative.
        let (after_id, after_sequence) = after.map_or(("", -1), |(id, s)| (id, to_i64(s)));
        let sql = format!(
            "SELECT {COLUMNS} FROM events \
              WHERE aggregate_type = ?1 AND (aggregate_id, sequence) > (?2, ?3) \
              ORDER BY aggregate_type, aggregate_id, sequence LIMIT ?4"
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
        // SQLite takes the bare columns from the row holding the max().
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT aggregate_id, max(sequence) AS sequence, \
                    json_extract(metadata, '$.chain_hash') AS chain_hash \
               FROM events WHERE aggregate_type = ?1 GROUP BY aggregate_id",
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
        // Local point lookups on the primary key: one connection, no round trips.
        let mut conn = self.0.acquire().await?;
        let mut found = Vec::with_capacity(keys.len());
        for (id, sequence) in keys {
            let hash: Option<Option<String>> = sqlx::query_scalar(
                "SELECT json_extract(metadata, '$.chain_hash') FROM events \
                  WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence = ?3",
            )
            .bind(aggregate_type)
            .bind(id)
            .bind(to_i64(*sequence))
            .fetch_optional(&mut *conn)
            .await?;
            found.push(hash.flatten());
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
              WHERE rowid > ?2 AND aggregate_type = ?1 \
                AND json_extract(metadata, '$.occurred_at') >= ?3 \
                AND json_extract(metadata, '$.occurred_at') < ?4 \
              ORDER BY rowid LIMIT ?5"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
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
fn recorded_all(rows: &[SqliteRow]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter()
        .map(recorded)
        .collect::<Result<_, _>>()
        .map_err(Into::into)
}

fn recorded(row: &SqliteRow) -> Result<RecordedEvent, sqlx::Error> {
    let recorded_at: String = row.try_get("recorded_at")?;
    Ok(RecordedEvent {
        checkpoint: Checkpoint {
            tx_id: 0,
            position: row.try_get("position")?,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: to_u64(row.try_get("sequence")?),
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        // The column's default writes RFC 3339; a hand-written row that is not is shown as the
        // epoch rather than failing a whole audit read.
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    })
}
