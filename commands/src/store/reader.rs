//! The global event-log reader: every event exactly once, in commit order, never skipping one
//! that commits late.
//!
//! PostgreSQL: rows are read in `(tx_id, position)` order, and only from transactions below the
//! horizon `pg_snapshot_xmin(pg_current_snapshot())`: every transaction with a smaller xid has
//! ended, so no row can later appear before the checkpoint (DESIGN §3.1; a naive
//! `position > checkpoint` loses events under concurrent writers). The query runs as a single
//! statement outside any transaction, so the reader's own xid never caps the horizon.
//!
//! SQLite: one writer at a time, so rowid order is commit order.

use chrono::{DateTime, Utc};
pub use domain::stored::{Checkpoint, RecordedEvent};
use sqlx::Row;

use super::{Store, StoreError};

// `ORDER BY events.…`: the select list aliases `tx_id` (cast to bigint), and an unqualified
// ORDER BY would sort by that alias — a sequential scan and a sort per batch instead of a walk
// of the (tx_id, position) index.
const PG_READ_AFTER: &str = "
SELECT tx_id::text::bigint AS tx_id, position, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE (tx_id, position) > ($1::bigint::text::xid8, $2)
   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY events.tx_id, events.position
 LIMIT $3";

const SQLITE_READ_AFTER: &str = "
SELECT 0 AS tx_id, rowid AS position, aggregate_type, aggregate_id, sequence,
       event_type, event_version, payload, metadata, recorded_at
  FROM events
 WHERE rowid > ?1
 ORDER BY rowid
 LIMIT ?2";

impl Store {
    /// Up to `limit` events after `checkpoint`, in commit order.
    pub async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Self::Postgres(pool) => {
                let rows = sqlx::query(PG_READ_AFTER)
                    .bind(checkpoint.tx_id)
                    .bind(checkpoint.position)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(RecordedEvent {
                            checkpoint: Checkpoint {
                                tx_id: row.try_get("tx_id")?,
                                position: row.try_get("position")?,
                            },
                            aggregate_type: row.try_get("aggregate_type")?,
                            aggregate_id: row.try_get("aggregate_id")?,
                            sequence: sequence(row.try_get("sequence")?),
                            event_type: row.try_get("event_type")?,
                            event_version: row.try_get("event_version")?,
                            payload: row.try_get("payload")?,
                            metadata: row.try_get("metadata")?,
                            recorded_at: row.try_get("recorded_at")?,
                        })
                    })
                    .collect()
            }
            Self::Sqlite(pool) => {
                let rows = sqlx::query(SQLITE_READ_AFTER)
                    .bind(checkpoint.position)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        let recorded_at: String = row.try_get("recorded_at")?;
                        Ok(RecordedEvent {
                            checkpoint: Checkpoint {
                                tx_id: 0,
                                position: row.try_get("position")?,
                            },
                            aggregate_type: row.try_get("aggregate_type")?,
                            aggregate_id: row.try_get("aggregate_id")?,
                            sequence: sequence(row.try_get("sequence")?),
                            event_type: row.try_get("event_type")?,
                            event_version: row.try_get("event_version")?,
                            payload: row.try_get("payload")?,
                            metadata: row.try_get("metadata")?,
                            recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
                                .map(|t| t.with_timezone(&Utc))
                                .unwrap_or_default(),
                        })
                    })
                    .collect()
            }
        }
    }
}

fn sequence(stored: i64) -> u64 {
    // The column has CHECK (sequence >= 0).
    u64::try_from(stored).unwrap_or_default()
}
