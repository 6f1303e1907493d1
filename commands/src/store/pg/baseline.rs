//! The pgbench-style baseline of `accountd bench`: one JSON row inserted per transaction
//! (autocommit), into a table made for it in a scratch database. Figures of the service are
//! quoted as ratios against it, measured in the same run.

use sqlx::PgPool;

use crate::store::StoreError;

/// Inserts of one JSON row each into `bench_baseline`.
pub struct InsertBaseline {
    pool: PgPool,
    payload: serde_json::Value,
}

impl InsertBaseline {
    /// Creates the table in the database behind `pool`.
    pub(in crate::store) async fn create(pool: PgPool) -> Result<Self, StoreError> {
        sqlx::query(
            "CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, aggregate_id text NOT NULL, payload json NOT NULL)",
        )
        .execute(&pool)
        .await?;
        // About the size of a contact-email change with its metadata.
        let payload = serde_json::json!({
            "previous": "someone.before@example.com", "email": "someone.after@example.com",
            "code_id": "0192f4c8-8f2e-7bb4-a0a8-3c9d7a1e2b3c",
            "metadata": {"actor": "account:100000000001", "request_id": "0192f4c8-8f2e-7bb4", "ip": "203.0.113.7"},
            "padding": "x".repeat(60)
        });
        Ok(Self { pool, payload })
    }

    /// One insert, in a transaction of its own, as client `client`.
    pub async fn insert(&self, client: usize) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO bench_baseline (aggregate_id, payload) VALUES ($1, $2)")
            .bind(client.to_string())
            .bind(&self.payload)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
