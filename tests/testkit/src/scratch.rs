//! Throwaway databases: `accountd-bench` measures on one, and the test kit gives each test its
//! own, so that runs in parallel never see each other's rows. A scratch PostgreSQL database is
//! created through an admin URL and dropped (forcibly) when the handle is dropped; a scratch
//! SQLite store is a file in a temporary folder, removed likewise.

use std::path::PathBuf;

use commands::store::{Store, StoreError};
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

/// A fresh, migrated store of its own.
pub struct Scratch {
    pub store: Store,
    /// The database's name (PostgreSQL) or the file's path (SQLite).
    pub name: String,
    /// Where to drop it from: the admin URL (PostgreSQL) or the folder (SQLite).
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { admin: String },
    Sqlite { dir: PathBuf },
}

impl Scratch {
    /// A fresh, migrated PostgreSQL database created through `admin`.
    pub async fn postgres(admin: &str) -> Result<Self, StoreError> {
        let name = format!("accountd_scratch_{}", Uuid::new_v4().simple());
        let url = create_database(admin, &name).await?;
        let scratch = Self {
            store: Store::open(&url).await?,
            name,
            cleanup: Cleanup::Postgres {
                admin: admin.to_owned(),
            },
        };
        scratch.store.migrate().await?;
        Ok(scratch)
    }

    /// A fresh, migrated SQLite store in a temporary folder.
    pub async fn sqlite() -> Result<Self, StoreError> {
        let dir =
            std::env::temp_dir().join(format!("accountd_scratch_{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Database(e.into()))?;
        let path = dir.join("accountd.db");
        let scratch = Self {
            store: Store::open_sqlite(&path).await?,
            name: path.display().to_string(),
            cleanup: Cleanup::Sqlite { dir },
        };
        scratch.store.migrate().await?;
        Ok(scratch)
    }

    /// Where the database is (`postgres://…` or `sqlite://PATH`), for the read side's pool.
    pub fn location(&self) -> &str {
        self.store.location()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin } => {
                // Dropping needs a connection of its own; do it on a thread with its own runtime
                // so that the caller's runtime (which may be shutting down) is not involved.
                let (admin, name) = (admin.clone(), self.name.clone());
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    if let Ok(runtime) = runtime {
                        let _ = runtime.block_on(drop_database(&admin, &name));
                    }
                })
                .join();
            }
        }
    }
}

/// Creates database `name` through the admin URL `admin`; the URL of the new database.
async fn create_database(admin: &str, name: &str) -> Result<String, sqlx::Error> {
    let mut conn = PgConnection::connect(admin).await?;
    // `name` is ours (a fixed prefix and a UUID), so formatting it into the statement is safe;
    // CREATE DATABASE takes no parameters.
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    conn.close().await?;
    Ok(url_with_database(admin, name))
}

/// Drops database `name` (closing its connections) through the admin URL `admin`.
async fn drop_database(admin: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(admin).await?;
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await?;
    conn.close().await?;
    Ok(())
}

/// `admin` with its database name replaced by `name`.
fn url_with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
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
