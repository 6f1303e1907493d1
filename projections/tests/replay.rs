//! Replays are no-ops: every row remembers the last stream sequence it reflects, so replaying
//! the log (from the start or from anywhere) leaves the state as it was, and two instances
//! stepping at once on the same database build the state one builds alone. A projector running
//! beside concurrent writers misses no event.

#[macro_use]
mod support;

use std::sync::Arc;

use domain::values::AccountId;
use support::*;
use testkit::sample;
use testkit::TestDatabase;

on_both_backends!(
    replaying_the_whole_log_again_changes_nothing,
    replaying_from_the_middle_of_the_log_changes_nothing,
    two_projectors_stepping_at_once_build_the_state_one_builds_alone,
    a_projector_running_beside_concurrent_writers_misses_no_event,
);

async fn reset_checkpoint_to(env: &Env, tx_id: i64, position: i64) {
    execute_sql(
        env.store(),
        &format!(
            "UPDATE projection_checkpoints SET tx_id = {tx_id}, position = {position} \
             WHERE name = 'profiles'"
        ),
    )
    .await;
}

async fn replaying_the_whole_log_again_changes_nothing(db: TestDatabase) {
    let env = Env::new(db).await;
    insert_history(env.store(), &sample::history(500, 10_000, 61)).await;
    env.settle(&env.projector().with_batch_size(1_000)).await;
    let once = dump(env.store()).await;
    assert_eq!(once.profiles.len(), 500);

    reset_checkpoint_to(&env, 0, 0).await;
    // Another batch size: batches cut the log elsewhere.
    env.settle(&env.projector().with_batch_size(137)).await;
    assert_same_state(&dump(env.store()).await, &once, "after a second replay");
    assert_eq!(env.checkpoint().await, log_head(env.store()).await);
}

async fn replaying_from_the_middle_of_the_log_changes_nothing(db: TestDatabase) {
    let env = Env::new(db).await;
    insert_history(env.store(), &sample::history(300, 8_000, 67)).await;
    env.project().await;
    let once = dump(env.store()).await;

    let log = read_whole_log(env.store()).await;
    for middle in [1, 2_500, 7_999] {
        let at = log[middle].checkpoint;
        reset_checkpoint_to(&env, at.tx_id, at.position).await;
        env.settle(&env.projector().with_batch_size(333)).await;
        assert_same_state(
            &dump(env.store()).await,
            &once,
            &format!("after replaying from event {middle}"),
        );
    }
}

async fn two_projectors_stepping_at_once_build_the_state_one_builds_alone(db: TestDatabase) {
    let env = Env::new(db).await;
    // Several inserts, so that on PostgreSQL the log spans several transactions.
    let history = sample::history(600, 12_000, 71);
    for chunk in history.chunks(2_000) {
        insert_history(env.store(), chunk).await;
    }
    let first = Arc::new(env.projector().with_batch_size(64));
    let second = Arc::new(env.projector().with_batch_size(100));
    // Each in a task of its own, in parallel on the multi-threaded runtime.
    let tasks: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .map(|projector| tokio::spawn(async move { step_until_idle(&projector).await }))
        .collect();
    let (mut applied, mut moved) = (0, 0);
    for task in tasks {
        let (a, m) = task.await.unwrap();
        applied += a;
        moved += m;
    }
    // Both read nothing more; on PostgreSQL another test's transaction may have held the
    // horizon back, so settle the rest with one of them.
    env.settle(&first).await;
    // Committed batches never overlap: together they applied each event at most once.
    assert!(
        applied > 0 && applied <= history.len(),
        "the two instances applied {applied} of {} events ({moved} lost races)",
        history.len()
    );

    let clean = env.sibling().await;
    insert_history(clean.store(), &history).await;
    clean.project().await;
    assert_same_state(
        &dump(env.store()).await,
        &dump(clean.store()).await,
        "two instances",
    );
}

async fn a_projector_running_beside_concurrent_writers_misses_no_event(db: TestDatabase) {
    let env = Env::new(db).await;
    let writer = Arc::new(Writer::with_wall_clock(env.store()));
    let mut accounts = Vec::new();
    for n in 0..8u32 {
        accounts.push(writer.register_with_mobile(&mobile(n)).await);
    }
    let projector = Arc::new(env.projector().with_batch_size(50));
    with_running(projector.clone(), writer.executor().commits(), async {
        let writers: Vec<_> = accounts
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let writer = writer.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    for n in 0..40 {
                        let instance = format!("ins-{i}-{n}");
                        writer
                            .assign_server(&id, &instance, &format!("10.{i}.{n}.1"))
                            .await;
                        if n % 3 == 0 {
                            writer.release_server(&id, &instance).await;
                        }
                    }
                })
            })
            .collect();
        for task in writers {
            task.await.unwrap();
        }
        // Every account's profile reaches its stream's last sequence.
        for id in &accounts {
            let sequence = writer
                .service
                .account(id)
                .await
                .expect("load the account")
                .sequence;
            assert!(
                env.read
                    .wait_for(id.as_str(), sequence, DEADLINE)
                    .await
                    .unwrap(),
                "the profile of {id} never reached sequence {sequence}"
            );
        }
    })
    .await;
    for id in &accounts {
        assert_servers_match(&env, &writer, id).await;
    }

    let clean = env.sibling().await;
    copy_log(env.store(), clean.store()).await;
    clean.project().await;
    env.settle(&projector).await;
    assert_same_state(
        &dump(env.store()).await,
        &dump(clean.store()).await,
        "beside concurrent writers",
    );
}

async fn assert_servers_match(env: &Env, writer: &Writer, id: &AccountId) {
    let account = writer.account(id).await;
    let mut expected: Vec<(String, String)> = account
        .servers
        .iter()
        .map(|s| (s.instance_id.clone(), s.public_ip.as_str().to_owned()))
        .collect();
    expected.sort();
    let mut projected: Vec<(String, String)> = env
        .read
        .profile_row(id.as_str())
        .await
        .unwrap()
        .expect("a profile row")
        .servers
        .into_iter()
        .map(|s| (s.instance_id, s.public_ip))
        .collect();
    projected.sort();
    assert_eq!(projected, expected, "the servers of {id}");
}
