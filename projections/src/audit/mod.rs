//! Audit (issue 7; SPEC §3 internal audit routes, §4 chain hash, §5 anchors, §6 `accountd
//! audit …`): an account's history, its state at any instant, and tamper evidence.
//!
//! Everything here reads the event store itself, never a read model, so it reflects a command
//! as soon as it committed (read-your-writes). The store is reached through the [`AuditLog`]
//! port, which the binary implements on the write side's store, so this crate does not depend
//! on `commands`. Anchors live in this crate's tables (migration 1003) in the same database.
//!
//! # Layout
//! - [`port`]: `AuditLog`, the event-store reads audit needs.
//! - [`redact`]: the event envelope of every audit output, with secrets removed at any depth.
//! - [`history`]: one account's events, paged.
//! - [`state`]: the profile as it stood at an instant, folded with the aggregate's own `apply`.
//! - [`verify`]: the hash chain of one stream or of every stream, checked against the latest
//!   anchor.
//! - [`anchors`]: anchors (root hash construction, storage, the periodic job, the sink they
//!   are published to).
//! - [`export`]: the events of a time range as ndjson closed by a root hash over the lines.

pub mod anchors;
pub mod export;
pub mod history;
pub mod port;
pub mod redact;
pub mod state;
pub mod verify;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::stored::RecordedEvent;

use crate::db::{ReadError, ReadStore};

pub use anchors::{Anchor, AnchorSink, AnchoredHead, DEFAULT_ANCHOR_INTERVAL};
pub use export::ExportSummary;
pub use history::{History, DEFAULT_LIMIT, MAX_LIMIT};
pub use port::{AuditLog, StreamHead};
pub use redact::{redact, AuditEvent};
pub use verify::{BrokenStream, StreamVerification, VerifyAllReport};

/// Why an audit request failed: a caller's mistake (the first two), or a technical failure.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A page size outside 1–[`MAX_LIMIT`] (the gateway answers 400 `invalid_request`).
    #[error("limit must be between 1 and {MAX_LIMIT}, got {0}")]
    InvalidLimit(u32),
    /// An export range whose start is not before its end.
    #[error("the range is empty: since must be before until")]
    InvalidRange,
    #[error("event store: {0}")]
    Log(#[source] domain::PortError),
    #[error("read store: {0}")]
    Store(#[from] ReadError),
    #[error("stored event {aggregate_id}#{sequence} cannot be read: {source}")]
    Corrupt {
        aggregate_id: String,
        sequence: u64,
        source: serde_json::Error,
    },
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// How many events one read of a stream takes.
const STREAM_PAGE: u32 = 1_000;

/// The audit service: the event store through its port, and the database holding anchors.
pub struct Audit<L> {
    log: Arc<L>,
    db: ReadStore,
    /// The password policy's reminder age, which the replayed profile's
    /// `password_change_recommended` depends on.
    reminder_after_days: i64,
}

impl<L> Clone for Audit<L> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            db: self.db.clone(),
            reminder_after_days: self.reminder_after_days,
        }
    }
}

impl<L: AuditLog> Audit<L> {
    /// `db` must be migrated (it holds the anchor tables).
    pub fn new(log: Arc<L>, db: ReadStore, reminder_after_days: i64) -> Self {
        Self {
            log,
            db,
            reminder_after_days,
        }
    }

    /// Every event of account stream `account_id`, in sequence order.
    async fn whole_stream(&self, account_id: &str) -> Result<Vec<RecordedEvent>, AuditError> {
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |e: &RecordedEvent| e.sequence);
            let page = self
                .log
                .stream(account_id, after, STREAM_PAGE)
                .await
                .map_err(AuditError::Log)?;
            let full = page.len() == STREAM_PAGE as usize;
            events.extend(page);
            if !full {
                return Ok(events);
            }
        }
    }
}

/// When `event` happened: its metadata's `occurred_at` (the command's time, covered by the
/// chain hash), or when the store recorded it for a row without one.
pub(crate) fn occurred_at(event: &RecordedEvent) -> DateTime<Utc> {
    event
        .metadata
        .get("occurred_at")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(event.recorded_at, |t| t.with_timezone(&Utc))
}
