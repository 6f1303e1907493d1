//! The read side's database: the same PostgreSQL or SQLite file as the event store, with its
//! own tables and migrations (versions from 1001, in the same ledger as the write side's).

use sqlx::{PgPool, SqlitePool};

#[derive(Clone, Debug)]
pub enum ReadStore {
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
    pub async fn migrate(&self) -> Result<(), ReadError> {
        match self {
            Self::Postgres(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/postgres");
                migrator.set_ignore_missing(true).run(pool).await?;
            }
            Self::Sqlite(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/sqlite");
                migrator.set_ignore_missing(true).run(pool).await?;
            }
        }
        Ok(())
    }
}

/// The SQLite spelling of a statement written with PostgreSQL's `$n` placeholders.
pub(crate) fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}
