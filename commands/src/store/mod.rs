//! The write side's storage seam (ADR 0007). Each store is a trait, implemented once per
//! dialect: [`pg`] (PostgreSQL: postgres-es's events table plus a global order) and [`sqlite`]
//! (the embedded file, sqlite-es's table). [`Store`] is the facade the rest of the crate and the
//! binary hold; [`Store::open`] is the one place that chooses the backend, from the location.
//!
//! The stores: the event log ([`EventStore`]: streams, append, the gap-free global reader, the
//! audit reads, account numbers), claims ([`crate::claims::ClaimStore`]), rate limits
//! ([`crate::limits::LimitStore`]), the reset-token index ([`ResetIndex`], written by `append`
//! in the events' own transaction) and idempotency records
//! ([`crate::idempotency::IdempotencyStore`]). Rules (claim take-over, cooldowns, leases) live
//! with their traits, written once; the implementations only speak SQL.

mod pg;
mod sql;
mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::PersistenceError;
pub use cqrs_es::persist::SerializedEvent;

use crate::claims::ClaimStore;
use crate::idempotency::IdempotencyStore;
use crate::limits::LimitStore;
pub use domain::stored::{Checkpoint, RecordedEvent};
pub use pg::MAX_CONNECTIONS;

/// A store failure: the database is unreachable, or answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("event store: {0}")]
    Persistence(#[from] PersistenceError),
    #[error("stored event {aggregate_id}#{sequence} cannot be read: {source}")]
    Corrupt {
        aggregate_id: String,
        sequence: u64,
        source: serde_json::Error,
    },
}

/// The last event of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    pub aggregate_id: String,
    /// The highest stored sequence.
    pub sequence: u64,
    /// The `chain_hash` stored in that event's metadata (empty when it has none).
    pub chain_hash: String,
}

/// A reset token's index row: its SHA-256 and the account it was issued to. Written with the
/// event that issues the token, so a link works the moment its email can be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetIndexEntry {
    pub token_digest: String,
    pub account_id: String,
    pub expires_at: DateTime<Utc>,
}

/// The event log.
///
/// The global reader promises every event exactly once, in commit order, never skipping one
/// that commits late (PostgreSQL: `(tx_id, position)` below the xid horizon, DESIGN §3.1;
/// SQLite: one writer at a time, so rowid order is commit order). The audit reads are keyset
/// walks over committed rows: "every event committed before the walk began".
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Creates or updates the whole write-side schema. Idempotent, and safe to run from several
    /// processes (sqlx takes an advisory lock on PostgreSQL).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Refreshes the planner's statistics of the events table (after a bulk load).
    async fn analyze(&self) -> Result<(), StoreError>;
    /// The events of one stream after sequence `after`, in order (cqrs-es's shape).
    async fn stream(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError>;
    /// Appends `events` (and indexes `resets`) atomically, in the order given; they may belong
    /// to several streams of `aggregate_type` (bulk loads of benchmarks).
    /// `Err(Persistence(OptimisticLockError))` when another writer took one of the sequences.
    async fn append(
        &self,
        aggregate_type: &str,
        events: &[SerializedEvent],
        resets: &[ResetIndexEntry],
    ) -> Result<(), StoreError>;
    /// The next number of the never-reusing account id sequence.
    async fn next_account_number(&self) -> Result<u64, StoreError>;
    /// Up to `limit` events after `checkpoint`, in commit order.
    async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
    /// Up to `limit` events of one stream after sequence `after`, in sequence order.
    async fn stream_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
    /// Up to `limit` events of every stream of `aggregate_type`, in (aggregate id, sequence)
    /// order, after the key `after` (`None`: from the start).
    async fn streams_after(
        &self,
        aggregate_type: &str,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
    /// The head of every stream of `aggregate_type`, in any order.
    async fn stream_heads(&self, aggregate_type: &str) -> Result<Vec<StreamHead>, StoreError>;
    /// The `chain_hash` stored at each key, in the order asked (`None` where none is stored).
    async fn chain_hashes_at(
        &self,
        aggregate_type: &str,
        keys: &[(String, u64)],
    ) -> Result<Vec<Option<String>>, StoreError>;
    /// Up to `limit` events of `aggregate_type` after `after` in commit order whose metadata
    /// `occurred_at` (RFC 3339 text, see [`occurred_at_text`]) is in `[since, until)`.
    async fn occurred_between(
        &self,
        aggregate_type: &str,
        since: &str,
        until: &str,
        after: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}

/// Reset tokens by their SHA-256 (operational state). Rows are written by
/// [`EventStore::append`]; the account aggregate still decides whether a token is live.
#[async_trait]
pub trait ResetIndex: Send + Sync {
    /// The account a reset token digest was issued to, if indexed.
    async fn reset_token_owner(&self, digest_hex: &str) -> Result<Option<String>, StoreError>;
}

/// The write side's stores on one backend. Cloning is cheap (the stores are shared).
#[derive(Clone)]
pub struct Store {
    /// Where the database is (`postgres://…` or `sqlite://PATH`), so that the read side can
    /// open its own pool on the same database. May carry a password: never logged.
    location: Arc<str>,
    events: Arc<dyn EventStore>,
    claims: Arc<dyn ClaimStore>,
    limits: Arc<dyn LimitStore>,
    resets: Arc<dyn ResetIndex>,
    idempotency: Arc<dyn IdempotencyStore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = if self.is_sqlite() {
            "sqlite"
        } else {
            "postgres"
        };
        f.debug_struct("Store")
            .field("backend", &backend)
            .finish_non_exhaustive()
    }
}

/// Where a PostgreSQL URL points (`host:port/database`, no credentials), for messages; an
/// error when `url` is not a valid PostgreSQL URL.
pub fn postgres_target(url: &str) -> Result<String, StoreError> {
    pg::target(url)
}

/// Connects once to the PostgreSQL at `url` and disconnects: start-up reports an unreachable
/// database with its real cause before any pool is built.
pub async fn check_postgres(url: &str) -> Result<(), StoreError> {
    pg::check(url).await
}

impl Store {
    /// Opens the store at `location`: `sqlite://PATH` (or `sqlite:PATH`) is the embedded file,
    /// created if missing; anything else is a PostgreSQL URL. Does not migrate.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        match location.strip_prefix("sqlite:") {
            Some(path) => Self::open_sqlite(Path::new(path.trim_start_matches("//"))).await,
            None => Self::connect_postgres(location, pg::MAX_CONNECTIONS).await,
        }
    }

    /// Connects to PostgreSQL with a pool of at most `max_connections`; waiting for a
    /// connection gives up after 5 s (tools and tests: patience over failing fast).
    pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_postgres_failing_after(url, max_connections, Duration::from_secs(5)).await
    }

    /// Connects to PostgreSQL with a pool whose callers wait at most `acquire_timeout` for a
    /// connection. The service uses a short one, so that with the database down a request fails
    /// in well under a second instead of queueing (the pool retries refused connections until
    /// then).
    pub async fn connect_postgres_failing_after(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let backend = Arc::new(pg::Pg::connect(url, max_connections, acquire_timeout).await?);
        Ok(Self {
            location: url.into(),
            events: backend.clone(),
            claims: backend.clone(),
            limits: backend.clone(),
            resets: backend.clone(),
            idempotency: backend,
        })
    }

    /// Opens (creating if needed) the embedded store file.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let backend = Arc::new(sqlite::Lite::open(path).await?);
        Ok(Self {
            location: format!("sqlite://{}", path.display()).into(),
            events: backend.clone(),
            claims: backend.clone(),
            limits: backend.clone(),
            resets: backend.clone(),
            idempotency: backend,
        })
    }

    /// Where the database is (`postgres://…` or `sqlite://PATH`): the read side opens its own
    /// pool there. May carry credentials; do not log it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether this is the embedded store.
    pub fn is_sqlite(&self) -> bool {
        self.location.starts_with("sqlite:")
    }

    pub fn events(&self) -> &dyn EventStore {
        self.events.as_ref()
    }

    pub fn claims(&self) -> &dyn ClaimStore {
        self.claims.as_ref()
    }

    pub fn limits(&self) -> &dyn LimitStore {
        self.limits.as_ref()
    }

    pub fn idempotency(&self) -> &dyn IdempotencyStore {
        self.idempotency.as_ref()
    }

    /// Creates or updates the schema (see [`EventStore::migrate`]).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.events.migrate().await
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.events.ping().await
    }

    /// The next account id from the never-reusing sequence.
    pub async fn next_account_number(&self) -> Result<u64, StoreError> {
        self.events.next_account_number().await
    }

    /// Up to `limit` events after `checkpoint`, in commit order.
    pub async fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.events.read_after(checkpoint, limit).await
    }

    /// See [`EventStore::stream_after`].
    pub async fn stream_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        (self.events)
            .stream_after(aggregate_type, aggregate_id, after, limit)
            .await
    }

    /// See [`EventStore::streams_after`].
    pub async fn streams_after(
        &self,
        aggregate_type: &str,
        after: Option<(&str, u64)>,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.events
            .streams_after(aggregate_type, after, limit)
            .await
    }

    /// The head of every stream of `aggregate_type`, by aggregate id.
    pub async fn stream_heads(&self, aggregate_type: &str) -> Result<Vec<StreamHead>, StoreError> {
        let mut heads = self.events.stream_heads(aggregate_type).await?;
        heads.sort_unstable_by(|a, b| a.aggregate_id.cmp(&b.aggregate_id));
        Ok(heads)
    }

    /// See [`EventStore::chain_hashes_at`].
    pub async fn chain_hashes_at(
        &self,
        aggregate_type: &str,
        keys: &[(String, u64)],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.events.chain_hashes_at(aggregate_type, keys).await
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
        let (since, until) = (occurred_at_text(since), occurred_at_text(until));
        (self.events)
            .occurred_between(aggregate_type, &since, &until, after, limit)
            .await
    }

    /// The account a reset token digest was issued to, if indexed.
    pub async fn reset_token_owner(&self, digest_hex: &str) -> Result<Option<String>, StoreError> {
        self.resets.reset_token_owner(digest_hex).await
    }
}

/// The one text form of `occurred_at` in event metadata: RFC 3339, UTC, `Z`, six fractional
/// digits, so that text order is time order.
pub fn occurred_at_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A sequence or bound as the `bigint`/`INTEGER` columns hold it.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored sequence: the column has CHECK (sequence >= 0).
fn to_u64(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or_default()
}

/// A stored sequence as cqrs-es counts it.
fn to_usize(stored: i64) -> usize {
    usize::try_from(stored).unwrap_or_default()
}

/// The error of an append that lost the race for a sequence (a unique violation on the key).
fn append_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            PersistenceError::OptimisticLockError.into()
        }
        _ => error.into(),
    }
}
