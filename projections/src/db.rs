//! The read side's database: the same PostgreSQL database or SQLite file as the event store,
//! with its own pool, tables and migrations (versions from 1001, in the same ledger as the
//! write side's).
//!
//! [`ReadStore`] is the handle the rest of the crate and the binary use. [`ReadStore::open`]
//! is the one place that chooses the backend: it builds the stores of [`crate::store`] from
//! the PostgreSQL or the SQLite implementation, and nothing above it names a dialect.

use std::sync::Arc;

use sqlx::{PgPool, SqlitePool};

pub(crate) use crate::store::pg::SessionLock;
use crate::store::sql::SqlStore;
use crate::store::{self, AnchorStore, ProfileStore, ProjectionStore, SessionStore};

/// The read side's stores, on one backend. Cloning is cheap (the stores are shared).
#[derive(Clone)]
pub struct ReadStore {
    pub(crate) profiles: Arc<dyn ProfileStore>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) projections: Arc<dyn ProjectionStore>,
    pub(crate) anchors: Arc<dyn AnchorStore>,
    /// The pool itself, for the relay and the notifier until they move behind store traits of
    /// their own (issue 11).
    pub(crate) db: Db,
}

impl std::fmt::Debug for ReadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadStore").field("db", &self.db).finish()
    }
}

/// The backend's pool.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("event log: {0}")]
    Log(String),
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
                anchors: stores,
                db: Db::Sqlite(pool),
            })
        } else {
            let pool = store::pg::open(location).await?;
            let stores = Arc::new(SqlStore(pool.clone()));
            Ok(Self {
                profiles: stores.clone(),
                sessions: stores.clone(),
                projections: stores.clone(),
                anchors: stores,
                db: Db::Postgres(pool),
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

    /// The backend's pool (the relay and the notifier; see [`ReadStore`]).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}

/// The SQLite spelling of a statement written with PostgreSQL's `$n` placeholders. Only the
/// relay and the notifier still use it, until issue 11 gives them stores of their own.
pub(crate) fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}
