//! Driving a benchmark: `clients` tasks repeating one operation for a fixed time, latencies in
//! an HDR histogram, and the pgbench-style insert that command benchmarks are compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use commands::store::Scratch;
use hdrhistogram::Histogram;

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

/// The pgbench-style baseline (commands' [`commands::store::InsertBaseline`]): one JSON row
/// inserted per transaction by each of `clients`, into a table made for it.
pub struct InsertBaseline(Arc<commands::store::InsertBaseline>);

impl InsertBaseline {
    /// Creates the table in the scratch database `db`.
    pub async fn new(db: &Scratch) -> anyhow::Result<Self> {
        Ok(Self(Arc::new(db.insert_baseline().await?)))
    }

    pub async fn measure(&self, clients: usize, duration: Duration) -> anyhow::Result<Run> {
        let baseline = self.0.clone();
        measure(clients, duration, move |client, _| {
            let baseline = baseline.clone();
            async move {
                baseline.insert(client).await?;
                Ok(true)
            }
        })
        .await
    }
}
