//! How an event is stored: its type name in `event_type`, its fields (without the enum tag) in
//! `payload`, and [`EVENT_VERSION`] in `event_version`. Reading goes back through the type name,
//! which is where an old version would be upcast.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version every event is written with today.
pub const EVENT_VERSION: &str = "1";

/// The stored payload of an externally tagged event enum: the fields of its variant.
pub fn to_payload<E: Serialize>(event: &E) -> Result<Value, serde_json::Error> {
    match serde_json::to_value(event)? {
        Value::Object(mut tagged) if tagged.len() == 1 => {
            let (_, fields) = tagged
                .iter_mut()
                .next()
                .map(|(k, v)| (k.clone(), v.take()))
                .expect("one entry, checked by the guard");
            Ok(fields)
        }
        other => Ok(other),
    }
}

/// The event of type `event_type` (stored with `event_version`) from its stored payload.
pub fn from_payload<E: DeserializeOwned>(
    event_type: &str,
    event_version: &str,
    payload: Value,
) -> Result<E, serde_json::Error> {
    // Version 1 is the only one so far; an upcaster for a later version goes here.
    let _ = event_version;
    let mut tagged = Map::with_capacity(1);
    tagged.insert(event_type.to_owned(), payload);
    serde_json::from_value(Value::Object(tagged))
}

/// Where a reader is in the global log. Ordered; `Checkpoint::default()` is before the first
/// event. The write side produces it; projections, the relay and audit consume it.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Checkpoint {
    /// The inserting transaction's xid (PostgreSQL); 0 on SQLite.
    pub tx_id: i64,
    /// The insert order within the table (identity on PostgreSQL, rowid on SQLite).
    pub position: i64,
}

/// One event as the global log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub checkpoint: Checkpoint,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}
