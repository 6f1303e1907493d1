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

/// A PostgreSQL session-level advisory lock, held on a connection of its own for as long as this
/// value lives: "one active instance" of a projector or relay. Dropping it closes that connection
/// (rather than returning it to the pool still holding the lock), so a standby takes over at once.
pub struct SessionLock(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl SessionLock {
    /// Waits until the lock named `name` is ours.
    pub async fn acquire(pool: &PgPool, name: &str) -> Self {
        loop {
            let attempt = async {
                let mut conn = pool.acquire().await?;
                sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
                    .bind(name)
                    .execute(&mut *conn)
                    .await?;
                Ok::<_, sqlx::Error>(conn)
            };
            match attempt.await {
                Ok(conn) => return Self(Some(conn)),
                Err(e) => {
                    tracing::warn!(lock = name, error = %e, "waiting for the lock");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            // Detached, the connection closes when dropped and the server releases the lock.
            drop(conn.detach());
        }
    }
}
