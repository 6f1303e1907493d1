//! The loop every catch-up worker runs — the projector, the relay, the notification planner and
//! the notifier's sender: one batch at a time, woken by local commits and polling for the rest,
//! retrying a failed batch after a growing pause. Nothing is skipped: a batch that fails is the
//! next one tried.

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::warn;

/// The shortest time from one partial batch to the next. A partial batch means the worker caught
/// up; under a steady stream of commits it would otherwise take them one at a time, each batch
/// costing its own reads, transaction and checkpoint. Waiting this long lets the next batch
/// gather what arrived meanwhile. A commit after a quiet spell is taken at once. At ~90
/// sign-ins/s, 25 ms (rather than 5) halved the batches per sign-in, 0.92 to 0.42, at a cost of
/// at most 25 ms per stage to read models and messages (SPEC §2 allows 2 and 5 seconds).
pub const GATHER: Duration = Duration::from_millis(25);

/// How a worker's batches follow each other.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// How long to wait for a wake-up before looking again anyway (other processes' writes).
    pub poll: Duration,
    /// A batch this big may have left more behind: the next one starts at once.
    pub full: usize,
}

/// Runs `step` (one batch; how many items it took) until `shutdown` resolves. After a full
/// batch the next starts at once; after a partial one the worker waits for a wake-up on `wake`
/// (a local commit), `poll` at most, and starts no sooner than [`GATHER`] after the partial one
/// began. A failed batch is retried after 200 ms times the failures in a row (2 s at most).
pub async fn run_batches<F, Fut, E>(
    worker: &str,
    wake: &Notify,
    pacing: Pacing,
    shutdown: impl Future<Output = ()>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, E>>,
    E: std::fmt::Display,
{
    tokio::pin!(shutdown);
    let mut failures: u32 = 0;
    let mut partial_began: Option<Instant> = None;
    loop {
        // Created before the batch, so a commit made during it wakes the wait below at once.
        let woken = wake.notified();
        let began = Instant::now();
        let outcome = tokio::select! {
            outcome = step() => outcome,
            () = &mut shutdown => return,
        };
        let pause = match outcome {
            Ok(taken) if taken >= pacing.full => {
                failures = 0;
                continue;
            }
            Ok(taken) => {
                failures = 0;
                partial_began = (taken > 0).then_some(began);
                pacing.poll
            }
            Err(e) => {
                failures += 1;
                warn!(worker, error = %e, failures, "batch failed; retrying");
                Duration::from_millis(200 * u64::from(failures.min(10)))
            }
        };
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(pause) => {}
            () = &mut shutdown => return,
        }
        if let Some(began) = partial_began.take() {
            tokio::select! {
                () = tokio::time::sleep_until(began + GATHER) => {}
                () = &mut shutdown => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    const PACING: Pacing = Pacing {
        poll: Duration::from_secs(3600),
        full: 10,
    };

    /// A worker over a queue of `backlog` items: each step takes up to `PACING.full`.
    fn worker(
        backlog: Arc<AtomicUsize>,
        steps: Arc<AtomicUsize>,
    ) -> impl FnMut() -> std::future::Ready<Result<usize, String>> {
        move || {
            steps.fetch_add(1, Ordering::SeqCst);
            let taken = backlog.load(Ordering::SeqCst).min(PACING.full);
            backlog.fetch_sub(taken, Ordering::SeqCst);
            std::future::ready(Ok(taken))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn full_batches_follow_at_once_and_a_partial_one_waits_for_a_commit() {
        let (backlog, steps) = (
            Arc::new(AtomicUsize::new(25)),
            Arc::new(AtomicUsize::new(0)),
        );
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let (wake, step) = (wake.clone(), worker(backlog.clone(), steps.clone()));
            async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                run_batches("test", &wake, PACING, shutdown, step).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        // 10 + 10 + 5: the partial third batch ends the run of steps; no empty read after it.
        assert_eq!(backlog.load(Ordering::SeqCst), 0);
        assert_eq!(steps.load(Ordering::SeqCst), 3);

        // Commits arrive: the next batch comes no sooner than GATHER after the last began, and
        // takes everything that arrived until then.
        backlog.fetch_add(1, Ordering::SeqCst);
        wake.notify_waiters();
        backlog.fetch_add(2, Ordering::SeqCst);
        wake.notify_waiters();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(steps.load(Ordering::SeqCst), 3, "gathering");
        tokio::time::sleep(GATHER).await;
        assert_eq!(steps.load(Ordering::SeqCst), 4);
        assert_eq!(
            backlog.load(Ordering::SeqCst),
            0,
            "one batch took all three"
        );

        let _ = stop.send(());
        running.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_retried_after_a_growing_pause() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let calls = calls.clone();
            async move {
                let wake = Notify::new();
                let shutdown = async {
                    let _ = stopped.await;
                };
                run_batches("test", &wake, PACING, shutdown, move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Err::<usize, _>("down"))
                })
                .await;
            }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "retried after 200 ms");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "then after 400 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let _ = stop.send(());
        running.await.unwrap();
    }
}
