//! Driving a benchmark: `clients` tasks repeating one operation for a fixed time, latencies in
//! an HDR histogram, and the pgbench-style insert that command benchmarks are compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sqlx::postgres::{PgPool, PgPoolOptions};
use testkit::Scratch;

/// Successes, failures and latencies of one measurement.
pub struct Run {
    /// Operations that succeeded (for HTTP: a 2xx answer).
    ops: u64,
    /// Operations that were answered but did not succeed.
    failed: u64,
    elapsed: Duration,
    /// Latency of every answer, successful or not, in microseconds.
    latencies: Histogram<u64>,
}

impl Run {
    /// Successful operations a second.
    pub fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> Duration {
        Duration::from_micros(self.latencies.value_at_quantile(p))
    }

    pub fn failed(&self) -> u64 {
        self.failed
    }
}

/// A latency histogram from 1 µs to 10 minutes at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .expect("constant bounds: 1 <= low, high >= 2 * low, 3 significant digits")
}

/// Runs `clients` tasks doing `op(client, i)` for `duration`; `op` says whether it succeeded.
pub async fn measure<F, Fut>(clients: usize, duration: Duration, op: F) -> anyhow::Result<Run>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = histogram();
                let (mut ops, mut failed) = (0, 0);
                let mut i = 0;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if op(client, i).await? {
                        ops += 1;
                    } else {
                        failed += 1;
                    }
                    latencies.saturating_record(t.elapsed().as_micros() as u64);
                    i += 1;
                }
                anyhow::Ok((ops, failed, latencies))
            })
        })
        .collect();
    let mut run = Run {
        ops: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: histogram(),
    };
    for task in tasks {
        let (ops, failed, latencies) = task.await??;
        run.ops += ops;
        run.failed += failed;
        run.latencies.add(latencies)?;
    }
    run.elapsed = start.elapsed();
    Ok(run)
}

/// The pgbench-style baseline: one JSON row inserted per transaction (autocommit) by each of
/// `clients`, into a table made for it in a scratch database, on a pool the size of the store's.
pub struct InsertBaseline(Arc<BaselineTable>);

struct BaselineTable {
    pool: PgPool,
    payload: serde_json::Value,
}

impl InsertBaseline {
    /// Creates the table in the scratch PostgreSQL database `db`.
    pub async fn new(db: &Scratch) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(commands::store::MAX_CONNECTIONS)
            .connect(db.location())
            .await?;
        sqlx::query(
            "CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, aggregate_id text NOT NULL, \
             payload json NOT NULL)",
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
        Ok(Self(Arc::new(BaselineTable { pool, payload })))
    }

    pub async fn measure(&self, clients: usize, duration: Duration) -> anyhow::Result<Run> {
        let baseline = self.0.clone();
        measure(clients, duration, move |client, _| {
            let baseline = baseline.clone();
            async move {
                sqlx::query("INSERT INTO bench_baseline (aggregate_id, payload) VALUES ($1, $2)")
                    .bind(client.to_string())
                    .bind(&baseline.payload)
                    .execute(&baseline.pool)
                    .await?;
                Ok(true)
            }
        })
        .await
    }
}
