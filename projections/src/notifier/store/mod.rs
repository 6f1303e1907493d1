//! The notifier's storage seam (issue 10's pattern): [`NotifyStore`], with a PostgreSQL
//! implementation in [`pg`] and a SQLite one in [`sqlite`], each statement written once in its
//! own dialect. [`crate::ReadStore::open`] picks the backend; nothing above this module knows which.
//!
//! Tables (migrations 1002 and 1011): the planner's checkpoint (`notifier_checkpoints`), its fold
//! of each account's contact values (`notifier_contacts`), subscribed messages waiting for the
//! planner (`notification_requests`), and the delivery log (`notification_deliveries`, one row
//! per (source, channel, recipient)).
//!
//! A delivery row goes `pending` → `sending` (claimed under a lease, one attempt counted) →
//! `sent`, or back to `pending` with a later due time after a transient failure, or `dead` (the
//! dead-letter record). `next_attempt_ms` is when a row is due: for `sending` rows the end of the
//! lease, so a row whose worker died is due again as soon as its lease runs out. Every update
//! after the claim is fenced by the attempt count the claim returned, so a worker that lost its
//! lease cannot overwrite what the next one did.

pub(crate) mod pg;
mod sql;
pub(crate) mod sqlite;

use std::collections::HashMap;

use async_trait::async_trait;
use domain::stored::Checkpoint;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::plan::{Contacts, Planned};
use crate::db::ReadError;

/// The notifier's tables, on either backend.
#[async_trait]
pub trait NotifyStore: Send + Sync {
    /// Where planner `name` is in the log (the start when it never planned).
    async fn checkpoint(&self, name: &str) -> Result<Checkpoint, ReadError>;
    /// The folded contact values of those of `account_ids` the planner has seen.
    async fn contacts(
        &self,
        account_ids: &[String],
    ) -> Result<HashMap<String, Contacts>, ReadError>;
    /// Moves planner `name` back to the start of the log and forgets its contact fold
    /// (operations: plan everything again; rows already planned are kept by their key).
    async fn reset(&self, name: &str) -> Result<(), ReadError>;
    /// The latest sequence the event store holds for account `account_id` (0: none). Asked
    /// only before a request is given up on: an event committed but not yet readable in commit
    /// order (held back behind an older transaction still in flight) must not make a request
    /// look impossible.
    async fn stored_sequence(&self, account_id: &str) -> Result<u64, ReadError>;
    /// Up to `limit` waiting subscribed messages, oldest first.
    async fn pending_requests(&self, limit: i64) -> Result<Vec<PendingRequest>, ReadError>;
    /// In one transaction: moves checkpoint `name` from `batch.from` to `batch.to`, stores the
    /// folded contacts, inserts the planned rows (a key already planned is kept as it is) and
    /// the dead letters, and removes the resolved requests. `false` (nothing written) when the
    /// checkpoint was not at `batch.from`: another planner moved it.
    async fn commit_plan(&self, name: &str, batch: &PlannedBatch) -> Result<bool, ReadError>;
    /// Keeps a subscribed message until the planner resolves it (a message already kept, or
    /// already resolved, is left as it is).
    async fn record_request(&self, request: &PendingRequest) -> Result<(), ReadError>;
    /// Records a message that can never be planned as a dead letter with `reason`.
    async fn record_dead(&self, dead: &DeadPlan, now_ms: i64) -> Result<(), ReadError>;
    /// Claims up to `limit` rows due at `now_ms` (pending, or sending with an expired lease) for
    /// one attempt each, leased until `lease_until_ms`. Rows another worker is claiming at the
    /// same moment are skipped, never waited for.
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, ReadError>;
    /// Extends the leases of `rows` still claimed by this attempt (the worker's heartbeat).
    async fn extend_leases(
        &self,
        rows: &[DeliveryRow],
        lease_until_ms: i64,
    ) -> Result<(), ReadError>;
    /// Records what became of claimed rows; an outcome whose claim was lost changes nothing.
    async fn finish(&self, outcomes: &[(DeliveryRow, Attempt)]) -> Result<(), ReadError>;
    /// Every row of `source_id`.
    async fn rows_of(&self, source_id: &str) -> Result<Vec<DeliveryRow>, ReadError>;
    /// Every dead letter, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, ReadError>;
    /// How many rows the delivery log holds in each state.
    async fn counts(&self) -> Result<Vec<(String, i64)>, ReadError>;
    /// Waits until this process is the one active instance named `name`, for as long as the
    /// returned value lives (PostgreSQL; the embedded store has one process).
    async fn exclusive(&self, name: &str) -> Box<dyn Send>;
}

/// Milliseconds since the epoch: the scheduling clock of the delivery log.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A subscribed message received from the bus, kept until it is planned.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRequest {
    /// `request:<Nats-Msg-Id>`: the delivery-log source of its messages.
    pub source_id: String,
    pub account_id: String,
    /// The account's events up to this sequence must be folded before it is planned.
    pub after_sequence: Option<u64>,
    /// The request (`kind`, `subject`, `body`) as received.
    pub params: Value,
}

/// A source that can never be planned, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadPlan {
    pub source_id: String,
    pub template: String,
    pub reason: String,
}

/// What one planner batch writes.
#[derive(Debug, Clone, Default)]
pub struct PlannedBatch {
    pub from: Checkpoint,
    pub to: Checkpoint,
    /// The folds that changed, by account.
    pub contacts: Vec<(String, Contacts)>,
    /// Planned rows by source, each key once, due at `now_ms`.
    pub deliveries: Vec<(String, Planned)>,
    pub dead: Vec<DeadPlan>,
    /// Requests planned (or dead-lettered) by this batch.
    pub resolved_requests: Vec<String>,
    pub now_ms: i64,
}

/// The state of a delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl State {
    pub fn parse(s: &str) -> Self {
        match s {
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "dead" => Self::Dead,
            _ => Self::Pending,
        }
    }
}

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub source_id: String,
    /// `sms` or `email` (`none` on a dead letter for a source that reached nobody).
    pub channel: String,
    pub recipient: String,
    pub template: String,
    pub params: Value,
    pub state: State,
    /// Attempts so far, this one included once claimed (the fence of later updates).
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

impl DeliveryRow {
    /// The message's stable id, derived from its key: the same on every attempt, so a receiver
    /// recognises a re-send (`Idempotency-Key` of an SMS, `Message-ID` of an email).
    pub fn delivery_id(&self) -> String {
        delivery_id(&self.source_id, &self.channel, &self.recipient)
    }
}

/// The delivery id of key (`source_id`, `channel`, `recipient`): 32 hex digits of its SHA-256.
pub fn delivery_id(source_id: &str, channel: &str, recipient: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [source_id, channel, recipient] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Sent,
    Retry { at_ms: i64, error: String },
    Dead { error: String },
}

/// A message given up on: its key, template, attempts and reason (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub source_id: String,
    pub channel: String,
    pub recipient: String,
    pub template: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A stored fold's columns.
pub(crate) fn split(value: &Option<(String, bool)>) -> (Option<String>, bool) {
    match value {
        Some((v, verified)) => (Some(v.clone()), *verified),
        None => (None, false),
    }
}

/// A fold from its columns.
pub(crate) fn contacts_of(
    last_sequence: i64,
    mobile: Option<String>,
    mobile_verified: bool,
    email: Option<String>,
    email_verified: bool,
) -> Contacts {
    Contacts {
        last_sequence: u64::try_from(last_sequence).unwrap_or_default(),
        mobile: mobile.map(|m| (m, mobile_verified)),
        email: email.map(|e| (e, email_verified)),
    }
}

/// Clamps a sequence into a BIGINT.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads a stored JSON text (a row written by this module is always valid JSON).
pub(crate) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
