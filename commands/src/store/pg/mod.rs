//! The write side's stores on PostgreSQL. Every statement here is PostgreSQL's (`$n`
//! placeholders, `xid8`, `UNNEST`, advisory locks), and each row shape is decoded once.

mod baseline;
mod claims;
mod events;
mod idempotency;
mod limits;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use super::StoreError;
pub use baseline::InsertBaseline;

/// The pool size of [`super::Store::open`]: enough for a gateway on a small machine.
pub(super) const MAX_CONNECTIONS: u32 = 32;

/// The write side's stores on one PostgreSQL pool.
#[derive(Debug, Clone)]
pub(super) struct Pg(PgPool);

impl Pg {
    pub(super) async fn connect(
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
        Ok(Self(pool))
    }

    /// The pgbench-style insert baseline, in this database.
    pub(super) async fn insert_baseline(&self) -> Result<InsertBaseline, StoreError> {
        InsertBaseline::create(self.0.clone()).await
    }
}

/// Where `url` points (`host:port/database`, no credentials); an error when it is not a
/// PostgreSQL URL.
pub(super) fn target(url: &str) -> Result<String, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    Ok(format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options
            .get_database()
            .unwrap_or_else(|| options.get_username())
    ))
}

/// One direct connection, closed again: the real cause of a failure ("Connection refused"),
/// where a pool would retry until its acquire timeout and say only "pool timed out".
pub(super) async fn check(url: &str) -> Result<(), StoreError> {
    let connection = PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
    // Closing politely is best effort: the pool opens its own connections.
    let _ = connection.close().await;
    Ok(())
}

/// Creates database `name` through the admin URL `admin`; the URL of the new database.
pub(super) async fn create_database(admin: &str, name: &str) -> Result<String, StoreError> {
    let mut conn = PgConnection::connect(admin).await?;
    // `name` is ours (a fixed prefix and a UUID), so formatting it into the statement is safe;
    // CREATE DATABASE takes no parameters.
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    conn.close().await?;
    Ok(url_with_database(admin, name))
}

/// Drops database `name` (closing its connections) through the admin URL `admin`.
pub(super) async fn drop_database(admin: &str, name: &str) -> Result<(), StoreError> {
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
