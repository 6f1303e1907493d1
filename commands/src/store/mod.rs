//! The event store on either backend: PostgreSQL (postgres-es's table, plus a global order) or
//! SQLite (sqlite-es's table in one file, the embedded default). Everything that is not an
//! event (claims, account ids) lives beside it in the same database.

mod reader;
mod reset_index;
mod streams;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use sqlite_es::SqliteEventRepository;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Row, SqlitePool};

pub use reader::{Checkpoint, RecordedEvent};

/// Which database, and its pool. Cloning is cheap (pools are shared).
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

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

impl Store {
    /// Connects to PostgreSQL. The pool is sized for a gateway on a small machine; waiting for a
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
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self::Postgres(pool))
    }

    /// Opens (creating if needed) the embedded store file.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
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
        Ok(Self::Sqlite(pool))
    }

    /// Creates or updates the schema. Idempotent, and safe to run from several processes
    /// (sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // The read side keeps its own migrations (versions from 1001) in the same ledger.
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

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    pub(crate) async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        Ok(match self {
            Self::Postgres(pool) => {
                PostgresEventRepository::new(pool.clone())
                    .get_events::<A>(aggregate_id)
                    .await?
            }
            Self::Sqlite(pool) => {
                SqliteEventRepository::new(pool.clone())
                    .get_events::<A>(aggregate_id)
                    .await?
            }
        })
    }

    /// The events of aggregate `id` after sequence `after`, in order. (postgres-es has this as
    /// `get_last_events`, but it formats the number into the SQL text, which defeats the
    /// prepared-statement cache; this binds it.)
    pub(crate) async fn stream_events_after<A: Aggregate>(
        &self,
        aggregate_id: &str,
        after: u64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        if after == 0 {
            return self.stream_events::<A>(aggregate_id).await;
        }
        const SQL: &str = "SELECT sequence, event_type, event_version, payload, metadata FROM events \
                           WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence";
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows = match self {
            Self::Postgres(pool) => sqlx::query(SQL)
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(after)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| pg_serialized_event::<A>(aggregate_id, row))
                .collect::<Result<_, sqlx::Error>>()?,
            Self::Sqlite(pool) => sqlx::query(&SQL.replace('$', "?"))
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(after)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| sqlite_serialized_event::<A>(aggregate_id, row))
                .collect::<Result<_, sqlx::Error>>()?,
        };
        Ok(rows)
    }

    /// Appends events atomically. `Err(Persistence(OptimisticLockError))` when another writer
    /// took one of the sequences first.
    ///
    /// PostgreSQL: one multi-row `INSERT … SELECT FROM UNNEST` statement, atomic on its own, so a
    /// command costs one round trip here instead of postgres-es's four (BEGIN, one INSERT per
    /// event, COMMIT); the rows are exactly the ones postgres-es would write. SQLite: sqlite-es's
    /// `persist` (the database is local, round trips cost nothing).
    pub(crate) async fn append<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
    ) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => {
                const SQL: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, \
                    event_type, event_version, payload, metadata) \
                    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], \
                    $5::text[], $6::text[]::json[], $7::text[]::json[])";
                let column =
                    |f: fn(&SerializedEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
                let inserted = sqlx::query(SQL)
                    .bind(column(|_| A::TYPE.to_owned()))
                    .bind(column(|e| e.aggregate_id.clone()))
                    .bind(events.iter().map(|e| e.sequence as i64).collect::<Vec<_>>())
                    .bind(column(|e| e.event_type.clone()))
                    .bind(column(|e| e.event_version.clone()))
                    .bind(column(|e| e.payload.to_string()))
                    .bind(column(|e| e.metadata.to_string()))
                    .execute(pool)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                        return Err(PersistenceError::OptimisticLockError.into());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Self::Sqlite(pool) => {
                SqliteEventRepository::new(pool.clone())
                    .persist::<A>(events, None)
                    .await?
            }
        }
        Ok(())
    }

    /// The next account id from the never-reusing sequence.
    pub async fn next_account_number(&self) -> Result<u64, StoreError> {
        let next: i64 = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT nextval('account_ids')")
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(
                    "UPDATE account_ids SET next = next + 1 WHERE id = 1 RETURNING next - 1",
                )
                .fetch_one(pool)
                .await?
            }
        };
        // The sequence starts at 100000000001 and is bounded above by 999999999999.
        Ok(u64::try_from(next).expect("account ids are positive"))
    }
}

/// A stored row of one aggregate's stream as cqrs-es's `SerializedEvent` (same shape on both
/// backends; a macro because the two row types share no decoding trait bound worth spelling).
macro_rules! serialized_event_from {
    ($name:ident, $row:ty) => {
        fn $name<A: Aggregate>(
            aggregate_id: &str,
            row: &$row,
        ) -> Result<SerializedEvent, sqlx::Error> {
            let sequence: i64 = row.try_get("sequence")?;
            Ok(SerializedEvent::new(
                aggregate_id.to_owned(),
                usize::try_from(sequence).unwrap_or_default(),
                A::TYPE.to_owned(),
                row.try_get("event_type")?,
                row.try_get("event_version")?,
                row.try_get("payload")?,
                row.try_get("metadata")?,
            ))
        }
    };
}
serialized_event_from!(pg_serialized_event, sqlx::postgres::PgRow);
serialized_event_from!(sqlite_serialized_event, sqlx::sqlite::SqliteRow);
