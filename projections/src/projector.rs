//! The catch-up projector (DESIGN §3.2): reads the event log after its checkpoint and, in ONE
//! transaction, applies a batch to the read model and advances the checkpoint. Rows remember the
//! stream sequence they reflect, so a replayed batch is a no-op.
//!
//! One active instance per projection: `run` holds a PostgreSQL advisory lock for its lifetime
//! (a second instance waits on it), and every commit also compares-and-sets the checkpoint, so
//! even two instances that both believe they are active cannot apply a batch twice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::stored::{Checkpoint, RecordedEvent};
use sqlx::Row;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, instrument, warn};

use crate::db::{sqlite, ReadError, ReadStore, SessionLock};
use crate::log::EventLog;
use crate::profile::{self, Tables};

/// The name of the profile projection (its checkpoint row and its lock).
pub const PROFILES: &str = "profiles";

/// How often an idle projector looks for events written by other processes.
const POLL: Duration = Duration::from_millis(200);

/// A test hook called after a batch was applied and before it commits; `true` fails the batch.
pub type FailPoint = Arc<dyn Fn(&[RecordedEvent]) -> bool + Send + Sync>;

pub struct Projector<L> {
    log: Arc<L>,
    db: ReadStore,
    tables: Tables,
    name: &'static str,
    batch_size: u32,
    progress: watch::Sender<Checkpoint>,
    fail_before_commit: Option<FailPoint>,
}

impl<L: EventLog> Projector<L> {
    pub fn new(log: Arc<L>, db: ReadStore) -> Self {
        Self {
            log,
            db,
            tables: Tables::LIVE,
            name: PROFILES,
            batch_size: 1000,
            progress: watch::Sender::new(Checkpoint::default()),
            fail_before_commit: None,
        }
    }

    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Injects a failure between applying a batch and committing it (fault tests).
    pub fn with_fail_point(mut self, fail: FailPoint) -> Self {
        self.fail_before_commit = Some(fail);
        self
    }

    /// The checkpoint after each committed batch of this instance.
    pub fn progress(&self) -> watch::Receiver<Checkpoint> {
        self.progress.subscribe()
    }

    /// The stored checkpoint.
    pub async fn checkpoint(&self) -> Result<Checkpoint, ReadError> {
        read_checkpoint(&self.db, self.name).await
    }

    /// Applies one batch. Returns how many events it read (0: caught up).
    #[instrument(skip_all, fields(projection = self.name))]
    pub async fn step(&self) -> Result<usize, ReadError> {
        let from = self.checkpoint().await?;
        let events = self
            .log
            .read_after(from, self.batch_size)
            .await
            .map_err(ReadError::Log)?;
        let Some(last) = events.last().map(|e| e.checkpoint) else {
            metrics::gauge!("accountd_projection_lag_seconds", "projection" => self.name).set(0.0);
            metrics::gauge!("accountd_projection_events_behind", "projection" => self.name)
                .set(0.0);
            return Ok(0);
        };
        apply_batch(
            &self.db,
            self.tables,
            self.name,
            Some(from),
            &events,
            last,
            self.fail_before_commit.as_ref(),
        )
        .await?;
        self.progress.send_replace(last);
        // Lag: how old the newest applied event is, and how many events this step found waiting
        // (a full batch means at least that many; the next step tells the rest).
        if let Some(newest) = events.last() {
            let lag = (chrono::Utc::now() - newest.recorded_at)
                .num_milliseconds()
                .max(0);
            metrics::gauge!("accountd_projection_lag_seconds", "projection" => self.name)
                .set(lag as f64 / 1000.0);
        }
        metrics::gauge!("accountd_projection_events_behind", "projection" => self.name)
            .set(events.len() as f64);
        metrics::counter!("accountd_projection_events_applied_total", "projection" => self.name)
            .increment(events.len() as u64);
        debug!(events = events.len(), "applied");
        Ok(events.len())
    }

    /// Steps until the log has nothing more.
    pub async fn catch_up(&self) -> Result<(), ReadError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    /// Runs until `shutdown` resolves: woken by `commits` (local writes) and polling for the
    /// rest. A failed batch is retried after a pause; nothing is skipped.
    pub async fn run(&self, commits: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let _lock = tokio::select! {
            lock = self.lock() => lock,
            () = &mut shutdown => return,
        };
        info!(projection = self.name, "projector active");
        loop {
            let wake = commits.notified();
            let outcome = tokio::select! {
                outcome = self.step() => outcome,
                () = &mut shutdown => return,
            };
            let pause = match outcome {
                Ok(0) => POLL,
                Ok(_) => continue,
                Err(e) => {
                    warn!(projection = self.name, error = %e, "projection batch failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = wake => {}
                () = tokio::time::sleep(pause) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Holds the projection's advisory lock (PostgreSQL) until dropped.
    async fn lock(&self) -> Option<SessionLock> {
        let ReadStore::Postgres(pool) = &self.db else {
            return None; // the embedded store runs in one process
        };
        Some(SessionLock::acquire(pool, &format!("accountd.projection.{}", self.name)).await)
    }
}

pub(crate) async fn read_checkpoint(db: &ReadStore, name: &str) -> Result<Checkpoint, ReadError> {
    let sql = "SELECT tx_id, position FROM projection_checkpoints WHERE name = $1";
    let row = match db {
        ReadStore::Postgres(pool) => sqlx::query(sql)
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1))),
        ReadStore::Sqlite(pool) => sqlx::query(&sqlite(sql))
            .bind(name)
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1))),
    };
    Ok(row
        .map(|(tx_id, position)| Checkpoint { tx_id, position })
        .unwrap_or_default())
}

/// Applies `events` to `tables` and moves checkpoint `name` from `expected` to `to`, all in
/// one transaction. `expected: None` skips the compare (rebuild tables have no live writer).
pub(crate) async fn apply_batch(
    db: &ReadStore,
    tables: Tables,
    name: &str,
    expected: Option<Checkpoint>,
    events: &[RecordedEvent],
    to: Checkpoint,
    fail: Option<&FailPoint>,
) -> Result<(), ReadError> {
    let last_recorded_at = events.last().map(|e| e.recorded_at);
    let expected_or_any = expected.unwrap_or_default();
    macro_rules! in_transaction {
        ($pool:expr, $fix:expr) => {{
            let fix: fn(&str) -> String = $fix;
            let mut tx = $pool.begin().await?;
            // The checkpoint moves first: its row lock orders concurrent instances, and the
            // compare refuses a batch another instance already applied.
            sqlx::query(&fix(UPSERT_CHECKPOINT))
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let moved = sqlx::query(&fix(MOVE_CHECKPOINT))
                .bind(name)
                .bind(to.tx_id)
                .bind(to.position)
                .bind(expected.is_none())
                .bind(expected_or_any.tx_id)
                .bind(last_recorded_at)
                .bind(expected_or_any.position)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved != 1 {
                return Err(ReadError::CheckpointMoved(name.to_owned()));
            }
            profile::apply_in(&mut tx, tables, events).await?;
            if fail.is_some_and(|f| f(events)) {
                return Err(ReadError::Injected("before commit"));
            }
            tx.commit().await?;
        }};
    }
    match db {
        ReadStore::Postgres(pool) => in_transaction!(pool, |s| s.to_owned()),
        ReadStore::Sqlite(pool) => in_transaction!(pool, sqlite),
    }
    Ok(())
}

const UPSERT_CHECKPOINT: &str =
    "INSERT INTO projection_checkpoints (name, tx_id, position, applied_at, last_recorded_at) \
     VALUES ($1, 0, 0, NULL, NULL) ON CONFLICT (name) DO NOTHING";
const MOVE_CHECKPOINT: &str = "UPDATE projection_checkpoints \
        SET tx_id = $2, position = $3, applied_at = CURRENT_TIMESTAMP, last_recorded_at = $6 \
      WHERE name = $1 AND ($4 OR (tx_id = $5 AND position = $7))";
