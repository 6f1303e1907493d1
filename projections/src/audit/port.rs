//! The port through which audit reads the event store. The write side implements it on its
//! store (`commands::Store`, in `commands/src/store/streams.rs`); the `accountd` binary wires
//! the two (`gateway/src/audit.rs`), so neither crate depends on the other.
//!
//! Every read is of account streams (`aggregate_type = "Account"`) only.

use domain::PortError;
use std::future::Future;

use chrono::{DateTime, Utc};
use domain::stored::{Checkpoint, RecordedEvent};

/// The last stored event of one account stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    pub account_id: String,
    pub sequence: u64,
    /// The `chain_hash` in that event's metadata.
    pub chain_hash: String,
}

pub trait AuditLog: Send + Sync + 'static {
    /// Up to `limit` events of the stream of `account_id` after sequence `after`, in sequence
    /// order.
    fn stream(
        &self,
        account_id: &str,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send;

    /// Up to `limit` events of every account stream ordered by (account id, sequence), after
    /// the key `after` (`None`: from the start).
    fn streams(
        &self,
        after: Option<(String, u64)>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send;

    /// The head of every account stream, sorted by account id.
    fn heads(&self) -> impl Future<Output = Result<Vec<StreamHead>, PortError>> + Send;

    /// The chain hash stored at each `(account id, sequence)`, in the order asked; `None` where
    /// that event is not stored.
    fn chain_hashes_at(
        &self,
        keys: &[(String, u64)],
    ) -> impl Future<Output = Result<Vec<Option<String>>, PortError>> + Send;

    /// Up to `limit` account events after `after` in commit order whose `occurred_at` is in
    /// `[since, until)`.
    fn occurred_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Checkpoint,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send;
}
