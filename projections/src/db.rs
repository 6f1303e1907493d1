//! The read side's database: the same PostgreSQL database or SQLite file as the event store,
//! with its own pool, tables and migrations (versions from 1001, in the same ledger as the
//! write side's).
//!
//! [`ReadStore`] is the handle the rest of the crate and the binary use. [`ReadStore::open`]
//! is the one place that chooses the backend: it builds the stores of [`crate::store`] from
//! the PostgreSQL or the SQLite implementation, and nothing above it names a dialect.

use std::sync::Arc;

use crate::notifier::store::NotifyStore;
pub(crate) use crate::store::pg::SessionLock;
use crate::store::sql::SqlStore;
use crate::store::{self, AnchorStore, ProfileStore, ProjectionStore, RelayStore, SessionStore};

/// The read side's stores, on one backend. Cloning is cheap (the stores are shared).
#[derive(Clone)]
pub struct ReadStore {
    pub(crate) profiles: Arc<dyn ProfileStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) projections: Arc<dyn ProjectionStore>,
    pub(crate) anchors: Arc<dyn AnchorStore>,
    pub(crate) relay: Arc<dyn RelayStore>,
    pub(crate) notifier: Arc<dyn NotifyStore>,
    /// Which backend, for `Debug` only.
    backend: &'static str,
}

impl std::fmt::Debug for ReadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("event log: {0}")]
    Log(#[source] domain::PortError),
    #[error("stored event {aggregate_id}#{sequence} cannot be read: {source}")]
    Corrupt {
        aggregate_id: String,
        sequence: u64,
        source: serde_json::Error,
    },
    #[error("another instance of projection {0} moved its checkpoint")]
    CheckpointMoved(String),
    #[error("injected failure: {0}")]
    Injected(&'static str),
}

impl ReadStore {
    /// Opens the read side at `location` and migrates its tables: a PostgreSQL URL
    /// (`postgres://…`), or the embedded SQLite file as `sqlite://PATH` (created if missing).
    pub async fn open(location: &str) -> Result<Self, ReadError> {
        if location.starts_with("sqlite:") {
            let pool = store::sqlite::open(location).await?;
            let stores = Arc::new(SqlStore(pool.clone()));
            Ok(Self {
                profiles: stores.clone(),
                sessions: stores.clone(),
                projections: stores.clone(),
                anchors: stores.clone(),
                relay: stores,
                notifier: Arc::new(crate::notifier::store::sqlite::SqliteNotifyStore(pool)),
                backend: "sqlite",
            })
        } else {
            let pool = store::pg::open(location).await?;
            let stores = Arc::new(SqlStore(pool.clone()));
            Ok(Self {
                profiles: stores.clone(),
                sessions: stores.clone(),
                projections: stores.clone(),
                anchors: stores.clone(),
                relay: stores,
                notifier: Arc::new(crate::notifier::store::pg::PgNotifyStore(pool)),
                backend: "postgres",
            })
        }
    }

    /// The read models' store.
    pub fn profiles(&self) -> &dyn ProfileStore {
        self.profiles.as_ref()
    }

    /// The sessions' store.
    pub fn sessions(&self) -> &dyn SessionStore {
        self.sessions.as_ref()
    }

    /// The projections' checkpoints, batch transactions and rebuild tables.
    pub fn projections(&self) -> &dyn ProjectionStore {
        self.projections.as_ref()
    }

    /// The audit anchors' store.
    pub fn anchors(&self) -> &dyn AnchorStore {
        self.anchors.as_ref()
    }

    /// The bus relay's checkpoint store.
    pub fn relay(&self) -> &dyn RelayStore {
        self.relay.as_ref()
    }

    /// The notifier's store (planner checkpoint, contacts, requests, delivery log).
    pub fn notifier(&self) -> Arc<dyn NotifyStore> {
        self.notifier.clone()
    }
}
