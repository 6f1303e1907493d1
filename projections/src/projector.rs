//! The catch-up projector (DESIGN §3.2): reads the event log after its checkpoint and, in ONE
//! transaction, applies a batch to the read model and advances the checkpoint. Rows remember the
//! stream sequence they reflect, so a replayed batch is a no-op.
//!
//! One active instance per projection: `run` holds a PostgreSQL advisory lock for its lifetime
//! (a second instance waits on it), and every commit also compares-and-sets the checkpoint, so
//! even two instances that both believe they are active cannot apply a batch twice.

use crate::batches::{run_batches, Pacing};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::stored::{Checkpoint, RecordedEvent};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, instrument};

use crate::db::{ReadError, ReadStore};
use crate::log::EventLog;
use crate::profile::{self, Tables};
use crate::store::ProjectionStore;

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
        self.db.projections.checkpoint(self.name).await
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
            self.db.projections.as_ref(),
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
        let lock_name = format!("accountd.projection.{}", self.name);
        let _lease = tokio::select! {
            lease = self.db.projections.exclusive(&lock_name) => lease,
            () = &mut shutdown => return,
        };
        info!(projection = self.name, "projector active");
        let pacing = Pacing {
            poll: POLL,
            full: self.batch_size as usize,
        };
        let worker = format!("projection {}", self.name);
        run_batches(&worker, &commits, pacing, shutdown, || self.step()).await;
    }
}

/// Applies `events` to `tables` and moves checkpoint `name` from `expected` to `to`, all in
/// one transaction. `expected: None` skips the compare (rebuild tables have no live writer).
pub(crate) async fn apply_batch(
    store: &dyn ProjectionStore,
    tables: Tables,
    name: &str,
    expected: Option<Checkpoint>,
    events: &[RecordedEvent],
    to: Checkpoint,
    fail: Option<&FailPoint>,
) -> Result<(), ReadError> {
    let mut tx = store.begin().await?;
    // The checkpoint moves first: its row lock orders concurrent instances, and the compare
    // refuses a batch another instance already applied.
    let last_recorded_at = events.last().map(|e| e.recorded_at);
    if !tx
        .move_checkpoint(name, expected, to, last_recorded_at)
        .await?
    {
        return Err(ReadError::CheckpointMoved(name.to_owned()));
    }
    profile::apply_in(tx.as_mut(), tables, events).await?;
    if fail.is_some_and(|f| f(events)) {
        return Err(ReadError::Injected("before commit"));
    }
    tx.commit().await
}
