//! Rebuilding a projection from the log: replay everything into `*_rebuild` copies of the
//! tables, then, in one transaction that holds the live checkpoint row, bring the copies to the
//! live checkpoint and replace the live rows with them. Readers see the old rows or the new
//! ones, never an empty table; the live projector waits on the checkpoint row and carries on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use domain::stored::{Checkpoint, RecordedEvent};
use domain::PortError;
use futures::{StreamExt, TryStreamExt};

use crate::db::{ReadError, ReadStore};
use crate::log::EventLog;
use crate::profile::{self, ProfileRow, Tables};
use crate::projector::PROFILES;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub events: u64,
    pub seconds: f64,
}

pub async fn rebuild<L: EventLog>(
    log: Arc<L>,
    db: &ReadStore,
    batch_size: u32,
) -> Result<RebuildReport, ReadError> {
    rebuild_counting(log, db, batch_size, &AtomicU64::new(0)).await
}

/// [`rebuild`], adding the events it has folded to `folded` as it goes (a progress display
/// reads it while the rebuild runs).
pub async fn rebuild_counting<L: EventLog>(
    log: Arc<L>,
    db: &ReadStore,
    batch_size: u32,
    folded: &AtomicU64,
) -> Result<RebuildReport, ReadError> {
    let started = Instant::now();
    let store = db.projections.as_ref();
    store.create_copies().await?;
    // Fold the whole log in memory (one row per account: memory grows with accounts, not
    // events), then write every row once. Writing batch by batch would update each row many
    // times over, and the dead tuples slowed a 1,000,000-event rebuild on PostgreSQL fivefold.
    // The log is read one batch ahead of the fold, so PostgreSQL serves the next batch while
    // this task folds the last one (on two cores, reading and folding each took about half).
    let (batches, mut next) = tokio::sync::mpsc::channel(2);
    let reader = tokio::spawn(read_ahead(log.clone(), batch_size, batches));
    let mut at = Checkpoint::default();
    let mut events = 0u64;
    let mut rows = std::collections::HashMap::new();
    while let Some(batch) = next.recv().await {
        let batch = batch.map_err(ReadError::Log)?;
        let Some(last) = batch.last().map(|e| e.checkpoint) else {
            break;
        };
        profile::fold(&mut rows, &batch)?;
        events += batch.len() as u64;
        folded.fetch_add(batch.len() as u64, Ordering::Relaxed);
        at = last;
    }
    reader.abort();
    // Rows go in chunks, a few transactions at once: each chunk's statement costs a round trip
    // and a commit that the others need not wait for.
    let all: Vec<&ProfileRow> = rows.values().collect();
    futures::stream::iter(all.chunks(batch_size.max(1) as usize))
        .map(|chunk| async move {
            let mut tx = store.begin().await?;
            tx.save(Tables::REBUILD, chunk).await?;
            tx.commit().await
        })
        .buffer_unordered(WRITERS)
        .try_collect::<()>()
        .await?;
    drop(rows);
    swap(log.as_ref(), db, at, batch_size, &mut events).await?;
    Ok(RebuildReport {
        events,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Transactions writing the rebuilt rows at once.
const WRITERS: usize = 4;

/// Reads the whole log in batches of `batch_size` into `batches`; an empty batch marks the end.
async fn read_ahead<L: EventLog>(
    log: Arc<L>,
    batch_size: u32,
    batches: tokio::sync::mpsc::Sender<Result<Vec<RecordedEvent>, PortError>>,
) {
    let mut at = Checkpoint::default();
    loop {
        let batch = log.read_after(at, batch_size).await;
        let last = batch
            .as_ref()
            .ok()
            .and_then(|b| b.last())
            .map(|e| e.checkpoint);
        let done = last.is_none();
        if batches.send(batch).await.is_err() || done {
            return;
        }
        at = last.unwrap_or(at);
    }
}

/// Brings the copies to the live checkpoint (or the live checkpoint to the copies) and swaps.
async fn swap<L: EventLog>(
    log: &L,
    db: &ReadStore,
    mut at: Checkpoint,
    batch_size: u32,
    events: &mut u64,
) -> Result<(), ReadError> {
    // Hold the live checkpoint row: the live projector's next commit waits for the swap.
    let (mut tx, live) = db.projections.begin_holding(PROFILES).await?;
    // Events the live projector applied after the copies were filled: apply them to the
    // copies too, inside this transaction, stopping exactly at the live checkpoint.
    while at < live {
        let batch: Vec<_> = log
            .read_after(at, batch_size)
            .await
            .map_err(ReadError::Log)?
            .into_iter()
            .filter(|e| e.checkpoint <= live)
            .collect();
        let Some(last) = batch.last().map(|e| e.checkpoint) else {
            break;
        };
        profile::apply_in(tx.as_mut(), Tables::REBUILD, &batch).await?;
        *events += batch.len() as u64;
        at = last;
    }
    tx.swap_in_copies(PROFILES, at.max(live)).await?;
    tx.commit().await
}
