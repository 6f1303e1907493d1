//! Test support: a fresh PostgreSQL database (or SQLite file) per test, so tests run in
//! parallel against the real database without seeing each other.
//!
//! `ACCOUNTD_TEST_DATABASE_URL` names a database to connect to in order to create others
//! (default `postgres://postgres@127.0.0.1:5432/postgres`). Databases are dropped when the
//! handle is dropped.

use std::path::PathBuf;

use sqlx::{Connection, Executor as _, PgConnection};
use uuid::Uuid;

use crate::store::Store;

/// The admin URL tests create their databases through.
pub fn admin_url() -> String {
    std::env::var("ACCOUNTD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of one test's own, migrated.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub store: Store,
    sqlite_dir: Option<PathBuf>,
    admin: String,
}

impl TestDatabase {
    /// A fresh, migrated PostgreSQL database. Panics with a clear message when PostgreSQL is
    /// unreachable: these tests need the real database.
    pub async fn postgres() -> Self {
        Self::postgres_at(&admin_url()).await
    }

    /// A fresh, migrated database created through `admin` (benchmarks use this too).
    pub async fn postgres_at(admin: &str) -> Self {
        let admin = admin.to_owned();
        let name = format!("accountd_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL is required for this test ({admin}): {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let url = replace_database(&admin, &name);
        let store = Store::connect_postgres(&url, 40)
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        Self {
            name,
            url,
            store,
            sqlite_dir: None,
            admin,
        }
    }

    /// A fresh, migrated SQLite store in a temporary folder.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(format!("accountd_test_{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create a temporary folder");
        let path = dir.join("accountd.db");
        let store = Store::open_sqlite(&path)
            .await
            .expect("open the SQLite store");
        store.migrate().await.expect("migrate the SQLite store");
        Self {
            name: path.display().to_string(),
            url: format!("sqlite://{}", path.display()),
            store,
            sqlite_dir: Some(dir),
            admin: String::new(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
            return;
        }
        // Dropping needs a connection of its own; do it on a thread with its own runtime so a
        // test's runtime (which may be shutting down) is not involved.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ = conn
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
