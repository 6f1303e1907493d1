//! A database of each test's own, on the real PostgreSQL or a temporary SQLite file.
//!
//! `ACCOUNTD_TEST_DATABASE_URL` names a database to connect to in order to create others
//! (default `postgres://postgres@127.0.0.1:5432/postgres`). Databases are dropped when the
//! handle is dropped.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::Scratch;
use commands::Store;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{PgPool, SqlitePool};

/// The admin URL tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("ACCOUNTD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A raw pool on the test's database, for asserting on (or tampering with) stored rows.
#[derive(Debug, Clone)]
pub enum Raw {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Raw {
    /// The raw pool on `store`'s database: one per database and process, connecting when first
    /// used (harnesses call this wherever they hold only the store).
    pub fn of(store: &Store) -> Raw {
        static POOLS: OnceLock<Mutex<HashMap<String, Raw>>> = OnceLock::new();
        let mut pools = POOLS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let location = store.location();
        pools
            .entry(location.to_owned())
            .or_insert_with(|| match location.strip_prefix("sqlite:") {
                Some(_) => Raw::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect_lazy(location)
                        .expect("a SQLite URL"),
                ),
                None => Raw::Postgres(
                    PgPoolOptions::new()
                        .max_connections(8)
                        .connect_lazy(location)
                        .expect("a PostgreSQL URL"),
                ),
            })
            .clone()
    }
}

/// A bind value of [`Raw::execute`] and [`Raw::texts`].
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    Real(f64),
}

/// Binds `args` in order to a query of either backend.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match *arg {
                Arg::Text(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
                Arg::Real(v) => query.bind(v),
            };
        }
        query
    }};
}

impl Raw {
    /// The PostgreSQL pool (tests that only make sense there, e.g. on open transactions).
    pub fn postgres(&self) -> &PgPool {
        match self {
            Raw::Postgres(pool) => pool,
            Raw::Sqlite(_) => panic!("a PostgreSQL test database was expected"),
        }
    }

    /// Runs a statement written once per dialect (tampering, hand-made rows); the rows it
    /// changed.
    pub async fn execute(&self, postgres: &str, sqlite: &str, args: &[Arg<'_>]) -> u64 {
        match self {
            Raw::Postgres(pool) => bind_all!(sqlx::query(postgres), args)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            Raw::Sqlite(pool) => bind_all!(sqlx::query(sqlite), args)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("{postgres}: {e}"))
    }

    /// The first column, as text, of the rows of a query written once per dialect.
    pub async fn texts(&self, postgres: &str, sqlite: &str, args: &[Arg<'_>]) -> Vec<String> {
        match self {
            Raw::Postgres(pool) => {
                bind_all!(sqlx::query_scalar(postgres), args)
                    .fetch_all(pool)
                    .await
            }
            Raw::Sqlite(pool) => {
                bind_all!(sqlx::query_scalar(sqlite), args)
                    .fetch_all(pool)
                    .await
            }
        }
        .unwrap_or_else(|e| panic!("{postgres}: {e}"))
    }
}

/// A fresh, migrated database of one test's own.
pub struct TestDatabase {
    /// The write side's store on it.
    pub store: Store,
    /// A pool of the test's own on the same database.
    pub raw: Raw,
    /// The database's name (PostgreSQL) or the file's path (SQLite).
    pub name: String,
    /// Where it is (`postgres://…` or `sqlite://PATH`), for opening more pools (the read side).
    pub url: String,
    scratch: Scratch,
}

impl TestDatabase {
    /// A fresh PostgreSQL database. Panics with a clear message when PostgreSQL is unreachable:
    /// these tests need the real database.
    pub async fn postgres() -> Self {
        Self::postgres_at(&admin_url()).await
    }

    /// A fresh PostgreSQL database created through `admin`.
    pub async fn postgres_at(admin: &str) -> Self {
        let scratch = Scratch::postgres(admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required for this test ({admin}): {e}"));
        Self::new(scratch)
    }

    /// A fresh SQLite store in a temporary folder.
    pub async fn sqlite() -> Self {
        let scratch = Scratch::sqlite().await.expect("a temporary SQLite store");
        Self::new(scratch)
    }

    fn new(scratch: Scratch) -> Self {
        Self {
            store: scratch.store.clone(),
            raw: Raw::of(&scratch.store),
            name: scratch.name.clone(),
            url: scratch.location().to_owned(),
            scratch,
        }
    }

    /// Whether this is the SQLite backend.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.raw, Raw::Sqlite(_))
    }

    /// A second fresh database of the same backend.
    pub async fn sibling(&self) -> Self {
        if self.is_sqlite() {
            Self::sqlite().await
        } else {
            Self::postgres().await
        }
    }

    /// The scratch database underneath.
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }
}

/// Runs each named `async fn name(db: TestDatabase)` on a fresh PostgreSQL database and on a
/// fresh SQLite file, as the tests `name::on_postgres` and `name::on_sqlite`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres() {
                super::$test($crate::TestDatabase::postgres().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                super::$test($crate::TestDatabase::sqlite().await).await
            }
        }
    )+};
}
