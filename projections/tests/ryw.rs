//! Read-your-writes for the projected views (SPEC §2: within 2 seconds): `wait_for` answers
//! true once a running projector has passed the sequence a command returned, and false after
//! its timeout when nothing projects.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use testkit::TestDatabase;
use tokio::sync::Notify;

on_both_backends!(
    wait_for_answers_true_once_the_running_projector_passed_the_commands_sequence,
    wait_for_answers_false_after_a_short_timeout_when_no_projector_runs,
    a_running_projector_finds_writes_of_another_process_by_polling,
);

/// SPEC §2: lookups and the internal profile reflect a command within 2 seconds.
const SPEC_BOUND: Duration = Duration::from_secs(2);

async fn wait_for_answers_true_once_the_running_projector_passed_the_commands_sequence(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    let projector = Arc::new(env.projector());
    with_running(projector, writer.executor().commits(), async {
        reflects_each_command_within_the_spec_bound(&env, &writer).await
    })
    .await;
}

async fn reflects_each_command_within_the_spec_bound(env: &Env, writer: &Writer) {
    let a = writer.register_with_email("ada@example.com").await;
    for n in 1..=5u32 {
        let ip = format!("203.0.113.{n}");
        let committed = writer.assign_server(&a, &format!("ins-{n}"), &ip).await;
        let started = Instant::now();
        assert!(
            env.read
                .wait_for(a.as_str(), committed.sequence, SPEC_BOUND)
                .await
                .unwrap(),
            "sequence {} not reflected within {SPEC_BOUND:?}",
            committed.sequence
        );
        assert!(started.elapsed() < SPEC_BOUND);
        // What the command did is visible now.
        assert!(env.read.profile_sequence(a.as_str()).await.unwrap() >= committed.sequence);
        assert_eq!(
            env.read.accounts_by_server_ip(&ip).await.unwrap(),
            vec![a.as_str().to_owned()]
        );
    }
}

async fn wait_for_answers_false_after_a_short_timeout_when_no_projector_runs(db: TestDatabase) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    let a = writer.register_with_email("ada@example.com").await;
    let committed = writer.assign_server(&a, "ins-1", "203.0.113.1").await;

    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    assert!(!env
        .read
        .wait_for(a.as_str(), committed.sequence, timeout)
        .await
        .unwrap());
    let waited = started.elapsed();
    assert!(waited >= timeout, "gave up after {waited:?}");
    assert!(
        waited < Duration::from_secs(2),
        "gave up only after {waited:?}"
    );
    // An account nobody wrote is not reflected either.
    assert!(!env
        .read
        .wait_for("100000000999", 1, Duration::from_millis(20))
        .await
        .unwrap());

    // Once projected, the same wait answers at once.
    env.project().await;
    let started = Instant::now();
    assert!(env
        .read
        .wait_for(a.as_str(), committed.sequence, timeout)
        .await
        .unwrap());
    assert!(started.elapsed() < timeout);
}

async fn a_running_projector_finds_writes_of_another_process_by_polling(db: TestDatabase) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    let projector = Arc::new(env.projector());
    // The projector's wake-ups come from nobody: it learns of the writes by polling.
    with_running(projector, Arc::new(Notify::new()), async {
        let a = writer.register_with_email("ada@example.com").await;
        let committed = writer.assign_server(&a, "ins-1", "203.0.113.1").await;
        assert!(env
            .read
            .wait_for(a.as_str(), committed.sequence, SPEC_BOUND)
            .await
            .unwrap());
    })
    .await;
}
