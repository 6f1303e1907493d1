//! Faults of the projector: a batch that fails before its commit leaves no trace (neither rows
//! nor checkpoint), a restarted projector converges to the state a clean one builds from the
//! same log, a corrupt event stops the projector at it instead of being skipped, and a standby
//! instance takes over when the active one stops.

#[macro_use]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use commands::Store;
use domain::stored::Checkpoint;
use projections::projector::FailPoint;
use projections::{Projector, ReadError, ReadStore};
use serde_json::json;
use support::*;
use testkit::sample;
use testkit::TestDatabase;

on_both_backends!(
    a_batch_that_fails_before_its_commit_leaves_no_trace_and_a_restart_converges,
    a_failure_in_the_very_first_batch_leaves_no_checkpoint_and_no_rows,
    a_running_projector_retries_a_failed_batch_and_skips_nothing,
    a_corrupt_event_stops_the_projector_before_it_and_is_never_skipped,
);

/// A fail point that fails the `nth` batch (1-based) it sees, and no other.
fn fail_nth(nth: usize) -> (FailPoint, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let fail: FailPoint = Arc::new(move |_batch| counter.fetch_add(1, Ordering::SeqCst) + 1 == nth);
    (fail, seen)
}

/// One step that reads something (polling while the log's horizon is held back elsewhere).
async fn step_some(projector: &Projector<StoreLog>) -> Result<usize, ReadError> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match projector.step().await {
            Ok(0) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the log stayed empty"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => return other,
        }
    }
}

/// The state a clean projector builds in a second database from a copy of `env`'s log.
async fn clean_projection_of(env: &Env) -> Dump {
    let clean = env.sibling().await;
    copy_log(env.store(), clean.store()).await;
    clean.project().await;
    dump(clean.store()).await
}

async fn a_batch_that_fails_before_its_commit_leaves_no_trace_and_a_restart_converges(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    insert_history(env.store(), &sample::history(300, 6_000, 41)).await;
    let (fail, seen) = fail_nth(3);
    let failing = env.projector().with_batch_size(400).with_fail_point(fail);

    assert!(step_some(&failing).await.unwrap() > 0);
    assert!(step_some(&failing).await.unwrap() > 0);
    let before = dump(env.store()).await;
    let checkpoint_before = env.checkpoint().await;
    assert!(!before.profiles.is_empty());

    let error = step_some(&failing).await.unwrap_err();
    assert!(matches!(error, ReadError::Injected(_)), "{error}");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    assert_same_state(&dump(env.store()).await, &before, "after the failed batch");
    assert_eq!(env.checkpoint().await, checkpoint_before);

    // "Restart": a new projector without the fail point carries on from the checkpoint.
    drop(failing);
    let restarted = env.projector().with_batch_size(400);
    env.settle(&restarted).await;
    assert_same_state(
        &dump(env.store()).await,
        &clean_projection_of(&env).await,
        "after the restart",
    );
}

async fn a_failure_in_the_very_first_batch_leaves_no_checkpoint_and_no_rows(db: TestDatabase) {
    let env = Env::new(db).await;
    insert_history(env.store(), &sample::history(50, 800, 43)).await;
    let (fail, _) = fail_nth(1);
    let failing = env.projector().with_batch_size(100).with_fail_point(fail);

    let error = step_some(&failing).await.unwrap_err();
    assert!(matches!(error, ReadError::Injected(_)), "{error}");
    let state = dump(env.store()).await;
    assert!(state.profiles.is_empty() && state.servers.is_empty());
    assert_eq!(env.checkpoint().await, Checkpoint::default());

    let restarted = env.projector().with_batch_size(100);
    env.settle(&restarted).await;
    assert_same_state(
        &dump(env.store()).await,
        &clean_projection_of(&env).await,
        "after the restart",
    );
}

async fn a_running_projector_retries_a_failed_batch_and_skips_nothing(db: TestDatabase) {
    let env = Env::new(db).await;
    insert_history(env.store(), &sample::history(100, 3_000, 47)).await;
    let (fail, seen) = fail_nth(2);
    let projector = Arc::new(env.projector().with_batch_size(250).with_fail_point(fail));
    let head = log_head(env.store()).await;
    let mut progress = projector.progress();
    with_running(projector, Arc::new(tokio::sync::Notify::new()), async {
        tokio::time::timeout(DEADLINE, progress.wait_for(|at| *at >= head))
            .await
            .expect("the running projector reached the head of the log")
            .expect("the projector is alive");
    })
    .await;

    assert!(
        seen.load(Ordering::SeqCst) >= 3,
        "the failed batch was tried again"
    );
    assert_same_state(
        &dump(env.store()).await,
        &clean_projection_of(&env).await,
        "after the retried batch",
    );
}

async fn a_corrupt_event_stops_the_projector_before_it_and_is_never_skipped(db: TestDatabase) {
    let env = Env::new(db).await;
    let history = sample::history(40, 500, 53);
    insert_history(env.store(), &history).await;
    let victim = history[0].aggregate_id.clone();
    let next_sequence = history
        .iter()
        .filter(|e| e.aggregate_id == victim)
        .map(|e| e.sequence)
        .max()
        .unwrap()
        + 1;
    insert_rows(
        env.store(),
        &[EventRow {
            aggregate_type: "Account".into(),
            aggregate_id: victim.clone(),
            sequence: next_sequence,
            event_type: "ServerIpAssigned".into(),
            event_version: "1".into(),
            payload: json!({"instance_id": 5, "public_ip": "not an ip"}),
            metadata: json!({}),
        }],
    )
    .await;
    // Later events of other accounts.
    let later = moved_to(sample::history(10, 200, 54), '2');
    insert_history(env.store(), &later).await;

    let projector = env.projector().with_batch_size(100);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let error = loop {
        match projector.step().await {
            Ok(0) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never reached the corrupt event"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    match &error {
        ReadError::Corrupt {
            aggregate_id,
            sequence,
            ..
        } => assert_eq!((aggregate_id, *sequence), (&victim, next_sequence)),
        other => panic!("expected a corrupt-event error, got {other}"),
    }
    // Stuck before it: trying again fails again and moves nothing.
    let stuck_at = env.checkpoint().await;
    assert!(stuck_at < log_head(env.store()).await);
    let state = dump(env.store()).await;
    assert!(matches!(
        projector.step().await,
        Err(ReadError::Corrupt { .. })
    ));
    assert_eq!(env.checkpoint().await, stuck_at);
    assert_same_state(&dump(env.store()).await, &state, "after a second try");
    let row = env
        .read
        .profile_row(&victim)
        .await
        .unwrap()
        .expect("the victim's row");
    assert!(row.last_sequence < next_sequence as i64);
}

/// One active instance per projection (PostgreSQL advisory lock): a second running instance
/// waits, and takes over once the first one's `run` has returned — here while the first
/// one's process (its pool) carries on, as when a role is stopped inside `accountd serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_standby_projector_takes_over_when_the_active_one_stops() {
    let env = Env::new(TestDatabase::postgres().await).await;
    let writer = Writer::with_wall_clock(env.store());
    // Two "processes": each its own pool on the same database.
    let other = Store::connect_postgres(&env.db.url, 4).await.unwrap();
    let active = Arc::new(env.projector());
    let standby = Arc::new(Projector::new(
        Arc::new(StoreLog(other.clone())),
        ReadStore::open(&env.db.url).await.unwrap(),
    ));
    let (stop_active, active_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_standby, standby_stopped) = tokio::sync::oneshot::channel::<()>();
    let (start_standby, standby_started) = tokio::sync::oneshot::channel::<()>();
    let commits = || Arc::new(tokio::sync::Notify::new());
    let active_run = tokio::spawn({
        let (active, commits) = (active.clone(), commits());
        async move {
            active
                .run(commits, async {
                    let _ = active_stopped.await;
                })
                .await;
        }
    });
    let standby_run = tokio::spawn({
        let (standby, commits) = (standby.clone(), commits());
        async move {
            // Started once the active one holds the lock.
            let _ = standby_started.await;
            standby
                .run(commits, async {
                    let _ = standby_stopped.await;
                })
                .await;
        }
    });
    let body = async {
        let a = writer.register_with_email("ada@example.com").await;
        let committed = writer.assign_server(&a, "ins-1", "203.0.113.1").await;
        assert!(env
            .read
            .wait_for(a.as_str(), committed.sequence, DEADLINE)
            .await
            .unwrap());
        start_standby.send(()).ok();
        stop_active.send(()).ok();
        active_run.await.unwrap();

        let committed = writer.assign_server(&a, "ins-2", "203.0.113.2").await;
        let taken_over = env
            .read
            .wait_for(a.as_str(), committed.sequence, Duration::from_secs(10))
            .await
            .unwrap();
        // Who holds the projection's advisory lock now (granted) and who waits for it.
        let locks: Vec<(bool, String)> = sqlx::query_as(
            "SELECT l.granted, coalesce(a.state, '') FROM pg_locks l \
               JOIN pg_stat_activity a ON a.pid = l.pid \
              WHERE l.locktype = 'advisory' AND a.datname = current_database() \
              ORDER BY l.granted DESC",
        )
        .fetch_all(match &testkit::Raw::of(env.store()) {
            testkit::Raw::Postgres(pool) => pool,
            testkit::Raw::Sqlite(_) => unreachable!("a PostgreSQL test"),
        })
        .await
        .unwrap();
        stop_standby.send(()).ok();
        (taken_over, locks)
    };
    let (taken_over, locks) = body.await;
    standby_run.await.unwrap();
    assert!(
        taken_over,
        "the standby projector never took over after the active one's run returned; \
         advisory locks (granted, holder's state): {locks:?}"
    );
}
