//! Reads of whole streams for audit (SPEC §3, §5): one stream in sequence order, every stream
//! in key order, every stream's head, and the events that occurred in a time range in commit
//! order. The read side's audit port (`projections::audit::AuditLog`) is implemented on these
//! by the binary.
//!
//! Unlike the global reader these need no xid horizon: each is a keyset walk over rows already
//! committed, and what they promise is "every event committed before the walk began" (a row
//! that commits during the walk may or may not be seen, which is the nature of reading a live
//! store).

use chrono::{DateTime, SecondsFormat, Utc};
use domain::stored::{Checkpoint, RecordedEvent};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{Store, StoreError};

/// The last event of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    pub aggregate_id: String,
    /// The highest stored sequence.
    pub sequence: u64,
    /// The `chain_hash` stored in that event's metadata (empty when it has none).
    pub chain_hash: String,
}

/// The columns every statement below selects, in the order the decoders read them.
const PG_COLUMNS: &str = "tx_id::text::bigint AS tx_id, position, aggregate_type, aggregate_id, \
                          sequence, event_type, event_version, payload, metadata, recorded_at";
const SQLITE_COLUMNS: &str = "0 AS tx_id, rowid AS position, aggregate_type, aggregate_id, \
                              sequence, event_type, event_version, payload, metadata, recorded_at";

impl Store {
    /// Up to `limit` events of stream `aggregate_type`/`aggregate_id` after sequence `after`,
    /// in sequence order.
    pub async fn stream_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = to_i64(after);
        Ok(match self {
            Self::Postgres(pool) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events \
                  WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
                  ORDER BY sequence LIMIT $4"
            ))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(pg_event)
            .collect::<Result<_, _>>()?,
            Self::Sqlite(pool) => sqlx::query(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events \
                  WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3 \
                  ORDER BY sequence LIMIT ?4"
            ))
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(sqlite_event)
            .collect::<Result<_, _>>()?,
        })
    }

    /// Up to `limit` events of every stream of `aggregate_type`, ordered by (aggregate id,
    /// sequence), after the key `after` (`None`: from the start). Walks the primary key, so a
    /// whole-store verification reads the table once, stream by stream. (The type is an
    /// equality and the rest a row comparison, so that the index scan starts at the key instead
    /// of filtering from the first row of the type.)
    pub async fn streams_after(
        &self,
        aggregate_type: &str,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // The empty id sorts before every real one, and sequences are non-negative.
        let (after_id, after_sequence) = after.map_or(("", -1), |(id, s)| (id, to_i64(s)));
        Ok(match self {
            Self::Postgres(pool) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events \
                  WHERE aggregate_type = $1 AND (aggregate_id, sequence) > ($2, $3) \
                  ORDER BY aggregate_type, aggregate_id, sequence LIMIT $4"
            ))
            .bind(aggregate_type)
            .bind(after_id)
            .bind(after_sequence)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(pg_event)
            .collect::<Result<_, _>>()?,
            Self::Sqlite(pool) => sqlx::query(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events \
                  WHERE aggregate_type = ?1 AND (aggregate_id, sequence) > (?2, ?3) \
                  ORDER BY aggregate_type, aggregate_id, sequence LIMIT ?4"
            ))
            .bind(aggregate_type)
            .bind(after_id)
            .bind(after_sequence)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(sqlite_event)
            .collect::<Result<_, _>>()?,
        })
    }

    /// The head (last stored event) of every stream of `aggregate_type`, by aggregate id.
    pub async fn stream_heads(&self, aggregate_type: &str) -> Result<Vec<StreamHead>, StoreError> {
        let rows: Vec<(String, i64, Option<String>)> = match self {
            // A loose index scan: one probe of the primary key per stream for its id, one for
            // its last event, instead of reading every event.
            Self::Postgres(pool) => {
                sqlx::query_as(
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
                .fetch_all(pool)
                .await?
            }
            // SQLite takes the bare columns from the row holding the max().
            Self::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT aggregate_id, max(sequence) AS sequence, \
                            json_extract(metadata, '$.chain_hash') AS chain_hash \
                       FROM events WHERE aggregate_type = ?1 GROUP BY aggregate_id",
                )
                .bind(aggregate_type)
                .fetch_all(pool)
                .await?
            }
        };
        let mut heads: Vec<StreamHead> = rows
            .into_iter()
            .map(|(aggregate_id, sequence, chain_hash)| StreamHead {
                aggregate_id,
                sequence: to_u64(sequence),
                chain_hash: chain_hash.unwrap_or_default(),
            })
            .collect();
        heads.sort_unstable_by(|a, b| a.aggregate_id.cmp(&b.aggregate_id));
        Ok(heads)
    }

    /// The `chain_hash` stored at each `(aggregate id, sequence)` of `aggregate_type`, in the
    /// order asked (`None` where no such event is stored).
    pub async fn chain_hashes_at(
        &self,
        aggregate_type: &str,
        keys: &[(String, u64)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        match self {
            Self::Postgres(pool) => {
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
                    .fetch_all(pool)
                    .await?;
                    found.extend(rows.into_iter().map(|(_, hash)| hash));
                }
            }
            Self::Sqlite(pool) => {
                // Local point lookups on the primary key: one connection, no round trips.
                let mut conn = pool.acquire().await?;
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
            }
        }
        Ok(found)
    }

    /// Up to `limit` events of `aggregate_type` after `after` in commit order whose metadata
    /// `occurred_at` is in `[since, until)`.
    ///
    /// `occurred_at` is compared as text: the executor writes it in one fixed format (RFC 3339,
    /// UTC, `Z`, six fractional digits), in which text order is time order. It is covered by
    /// the chain hash, so moving an event out of a range cannot go unnoticed by verification.
    pub async fn occurred_between(
        &self,
        aggregate_type: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let since = since.to_rfc3339_opts(SecondsFormat::Micros, true);
        let until = until.to_rfc3339_opts(SecondsFormat::Micros, true);
        Ok(match self {
            Self::Postgres(pool) => sqlx::query(&format!(
                "SELECT {PG_COLUMNS} FROM events \
                  WHERE (tx_id, position) > ($2::bigint::text::xid8, $3) \
                    AND aggregate_type = $1 \
                    AND metadata->>'occurred_at' >= $4 AND metadata->>'occurred_at' < $5 \
                  ORDER BY tx_id, position LIMIT $6"
            ))
            .bind(aggregate_type)
            .bind(after.tx_id)
            .bind(after.position)
            .bind(&since)
            .bind(&until)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(pg_event)
            .collect::<Result<_, _>>()?,
            Self::Sqlite(pool) => sqlx::query(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events \
                  WHERE rowid > ?2 AND aggregate_type = ?1 \
                    AND json_extract(metadata, '$.occurred_at') >= ?3 \
                    AND json_extract(metadata, '$.occurred_at') < ?4 \
                  ORDER BY rowid LIMIT ?5"
            ))
            .bind(aggregate_type)
            .bind(after.position)
            .bind(&since)
            .bind(&until)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(sqlite_event)
            .collect::<Result<_, _>>()?,
        })
    }
}

fn pg_event(row: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
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

fn sqlite_event(row: &SqliteRow) -> Result<RecordedEvent, sqlx::Error> {
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
        // The column's default writes RFC 3339; a hand-written row that is not is shown as
        // the epoch rather than failing a whole audit read.
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    })
}

fn to_i64(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

fn to_u64(stored: i64) -> u64 {
    // The column has CHECK (sequence >= 0).
    u64::try_from(stored).unwrap_or_default()
}
