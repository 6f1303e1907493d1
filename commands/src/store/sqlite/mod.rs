//! The write side's stores on the embedded SQLite file. Every statement here is SQLite's (`?n`
//! placeholders, rowid order, `json_extract`), and each row shape is decoded once.

mod claims;
mod events;
mod idempotency;
mod limits;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::StoreError;

/// The write side's stores on one SQLite pool.
#[derive(Debug, Clone)]
pub(super) struct Lite(SqlitePool);

impl Lite {
    /// Opens (creating if needed) the store file.
    pub(super) async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with synchronous=FULL: an acknowledged command survives a power cut.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self(pool))
    }
}
