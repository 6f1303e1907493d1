//! What the event store holds, read back with plain SQL or through the global reader.

use commands::{Checkpoint, RecordedEvent, Store};
use domain::chain::{self, Link, Verification};
use serde_json::Value;

use crate::db::Raw;
use crate::DEADLINE;

/// One stored event row, read back with plain SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    /// The payload exactly as the database holds it.
    pub payload_text: String,
    /// The metadata exactly as the database holds it.
    pub metadata_text: String,
}

type Parts = (i64, String, String, String, String);

/// The rows of stream `id`, ordered by sequence, straight from the table.
pub async fn stream_rows(store: &Store, id: &str) -> Vec<StoredRow> {
    let rows: Vec<Parts> = match &Raw::of(store) {
        Raw::Postgres(pool) => sqlx::query_as(
            "SELECT sequence, event_type, event_version, payload::text, metadata::text \
               FROM events WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("read the stream"),
        Raw::Sqlite(pool) => sqlx::query_as(
            "SELECT sequence, event_type, event_version, payload, metadata \
               FROM events WHERE aggregate_id = ?1 ORDER BY sequence",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("read the stream"),
    };
    rows.into_iter()
        .map(
            |(sequence, event_type, event_version, payload_text, metadata_text)| StoredRow {
                sequence: u64::try_from(sequence).expect("sequences are positive"),
                event_type,
                event_version,
                payload: serde_json::from_str(&payload_text).expect("payload is JSON"),
                metadata: serde_json::from_str(&metadata_text).expect("metadata is JSON"),
                payload_text,
                metadata_text,
            },
        )
        .collect()
}

/// Every row of the events table as (aggregate id, sequence).
pub async fn all_keys(store: &Store) -> Vec<(String, u64)> {
    const SQL: &str = "SELECT aggregate_id, sequence FROM events";
    let rows: Vec<(String, i64)> = match &Raw::of(store) {
        Raw::Postgres(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
        Raw::Sqlite(pool) => sqlx::query_as(SQL).fetch_all(pool).await,
    }
    .expect("read the table");
    rows.into_iter()
        .map(|(id, seq)| (id, u64::try_from(seq).expect("sequences are positive")))
        .collect()
}

/// How many events the table holds.
pub async fn event_count(store: &Store) -> usize {
    count(store, "SELECT count(*) FROM events").await
}

/// The single count `sql` selects (the same text on both backends).
pub async fn count(store: &Store, sql: &str) -> usize {
    let n: i64 = match &Raw::of(store) {
        Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("count rows");
    usize::try_from(n).expect("a count is positive")
}

/// Verifies the hash chain of rows in the order given.
pub fn verify_rows(rows: &[StoredRow]) -> Verification {
    chain::verify(rows.iter().map(|r| Link {
        sequence: r.sequence,
        event_type: &r.event_type,
        event_version: &r.event_version,
        payload: &r.payload,
        metadata: &r.metadata,
    }))
}

/// Verifies the hash chain of recorded events in the order given.
pub fn verify_recorded(events: &[&RecordedEvent]) -> Verification {
    chain::verify(events.iter().map(|e| Link {
        sequence: e.sequence,
        event_type: &e.event_type,
        event_version: &e.event_version,
        payload: &e.payload,
        metadata: &e.metadata,
    }))
}

/// Reads the whole log with `read_after`, polling (with a deadline) until the reader has
/// returned `expected` events: on PostgreSQL an unrelated transaction of the cluster may hold
/// the horizon back for a moment.
pub async fn read_log(store: &Store, expected: usize) -> Vec<RecordedEvent> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut checkpoint = Checkpoint::default();
    let mut read = Vec::new();
    loop {
        let batch = store.read_after(checkpoint, 100).await.expect("read_after");
        if let Some(last) = batch.last() {
            checkpoint = last.checkpoint;
        }
        let empty = batch.is_empty();
        read.extend(batch);
        if read.len() >= expected {
            return read;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader returned {} of {expected} events before the deadline",
            read.len()
        );
        if empty {
            // Poll again shortly: the horizon moves when the unrelated transaction ends.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

/// The whole log (as many events as the table holds), through the global reader.
pub async fn read_whole_log(store: &Store) -> Vec<RecordedEvent> {
    let expected = event_count(store).await;
    read_log(store, expected).await
}
