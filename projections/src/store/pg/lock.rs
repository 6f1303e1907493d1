//! One active instance: a PostgreSQL session-level advisory lock.

use sqlx::PgPool;

/// A session-level advisory lock, held on a connection of its own for as long as this value
/// lives: "one active instance" of a projector or relay. Dropping it closes that connection
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
