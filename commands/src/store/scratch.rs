//! Throwaway databases: `accountd bench` measures on one, and the test kit gives each test its
//! own, so that runs in parallel never see each other's rows. A scratch PostgreSQL database is
//! created through an admin URL and dropped (forcibly) when the handle is dropped; a scratch
//! SQLite store is a file in a temporary folder, removed likewise.

use std::path::PathBuf;

use uuid::Uuid;

use super::{pg, Store, StoreError};

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
        let url = pg::create_database(admin, &name).await?;
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

    /// The pgbench-style insert baseline of `accountd bench`, on a pool of its own the size of
    /// the store's. PostgreSQL only: the figures it anchors are PostgreSQL's.
    pub async fn insert_baseline(&self) -> Result<pg::InsertBaseline, StoreError> {
        if let Cleanup::Sqlite { .. } = self.cleanup {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "the insert baseline runs on PostgreSQL".into(),
            )));
        }
        let pool = pg::Pg::connect(
            self.location(),
            pg::MAX_CONNECTIONS,
            std::time::Duration::from_secs(5),
        )
        .await?;
        pool.insert_baseline().await
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
                        let _ = runtime.block_on(pg::drop_database(&admin, &name));
                    }
                })
                .join();
            }
        }
    }
}
