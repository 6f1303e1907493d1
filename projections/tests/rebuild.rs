//! Rebuilding the profile projection from the log: the rebuilt state is the incrementally
//! built one (100,000 events over 5,000 accounts, on both backends), a damaged read model is
//! repaired, readers never see an empty table while the copies are swapped in, and the live
//! projector carries on from where the rebuild left it, even when it runs and commands commit
//! during the rebuild.

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use domain::Account;
use projections::rebuild::{rebuild, rebuild_counting};
use support::*;
use testkit::sample;
use testkit::TestDatabase;

on_both_backends!(
    a_rebuild_repairs_a_damaged_read_model,
    lookups_never_answer_empty_during_a_rebuild,
    a_rebuild_while_the_live_projector_runs_and_commands_commit_ends_in_the_clean_state,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_rebuild_of_100000_events_over_5000_accounts_equals_the_incremental_state() {
    rebuild_equals_incremental(TestDatabase::postgres().await, 5_000, 100_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_rebuild_of_100000_events_over_5000_accounts_equals_the_incremental_state() {
    rebuild_equals_incremental(TestDatabase::sqlite().await, 5_000, 100_000).await;
}

async fn rebuild_equals_incremental(db: TestDatabase, accounts: usize, events: usize) {
    let env = Env::new(db).await;
    let history = sample::history(accounts, events, 73);
    insert_history(env.store(), &history).await;
    env.settle(&env.projector().with_batch_size(1_000)).await;
    let incremental = dump(env.store()).await;
    let checkpoint = env.checkpoint().await;
    assert_eq!(incremental.profiles.len(), accounts);
    assert!(!incremental.servers.is_empty());

    let folded = AtomicU64::new(0);
    let report = rebuild_counting(env.log.clone(), &env.read, 1_000, &folded)
        .await
        .expect("rebuild");
    assert!(report.events >= events as u64, "{report:?}");
    // A progress display counts the events folded from the log (the swap's catch-up comes after).
    assert_eq!(folded.into_inner(), events as u64);
    assert_same_state(&dump(env.store()).await, &incremental, "rebuilt");
    assert_eq!(env.checkpoint().await, checkpoint);
}

async fn a_rebuild_repairs_a_damaged_read_model(db: TestDatabase) {
    let env = Env::new(db).await;
    insert_history(env.store(), &sample::history(200, 5_000, 79)).await;
    env.project().await;
    let good = dump(env.store()).await;

    execute_sql(
        env.store(),
        "UPDATE profiles SET login_email = 'mallory@example.com'",
    )
    .await;
    execute_sql(env.store(), "DELETE FROM servers").await;
    execute_sql(
        env.store(),
        "DELETE FROM profiles WHERE account_id = '100000000007'",
    )
    .await;
    assert_ne!(dump(env.store()).await, good);

    rebuild(env.log.clone(), &env.read, 500)
        .await
        .expect("rebuild");
    assert_same_state(&dump(env.store()).await, &good, "repaired");
    // Rebuilding again (the copies are made afresh) gives the same.
    rebuild(env.log.clone(), &env.read, 777)
        .await
        .expect("a second rebuild");
    assert_same_state(&dump(env.store()).await, &good, "rebuilt twice");

    // The live projector carries on from the rebuilt state.
    let later = moved_to(sample::history(50, 2_000, 80), '2');
    insert_history(env.store(), &later).await;
    env.project().await;
    let clean = env.sibling().await;
    copy_log(env.store(), clean.store()).await;
    clean.project().await;
    assert_same_state(
        &dump(env.store()).await,
        &dump(clean.store()).await,
        "after the rebuild",
    );
}

async fn lookups_never_answer_empty_during_a_rebuild(db: TestDatabase) {
    let env = Env::new(db).await;
    let history = sample::history(1_000, 30_000, 83);
    insert_history(env.store(), &history).await;
    env.project().await;

    // The final login email or login mobile of some accounts, from the domain's fold.
    let mut accounts: BTreeMap<String, Account> = BTreeMap::new();
    for e in &history {
        cqrs_es::Aggregate::apply(
            accounts.entry(e.aggregate_id.clone()).or_default(),
            e.event.clone(),
        );
    }
    let probes: Vec<(String, Option<String>, Option<String>)> = accounts
        .iter()
        .step_by(50)
        .map(|(id, a)| {
            (
                id.clone(),
                a.login_email.as_ref().map(|e| e.as_str().to_owned()),
                a.login_mobile.as_ref().map(|m| m.as_str().to_owned()),
            )
        })
        .collect();
    assert!(probes.iter().any(|p| p.1.is_some()) && probes.iter().any(|p| p.2.is_some()));

    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (read, done, reads, probes) = (
                env.read.clone(),
                done.clone(),
                reads.clone(),
                probes.clone(),
            );
            tokio::spawn(async move {
                let mut misses = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    for (id, login_email, login_mobile) in &probes {
                        if read.profile_row(id).await.unwrap().is_none() {
                            misses.push(format!("no profile row for {id}"));
                        }
                        if let Some(email) = login_email {
                            let found = read.accounts_by_login_email(email).await.unwrap();
                            if found != [id.clone()] {
                                misses.push(format!("{email} gave {found:?}"));
                            }
                        }
                        if let Some(mobile) = login_mobile {
                            let found = read.accounts_by_mobile(mobile).await.unwrap();
                            if !found.contains(id) {
                                misses.push(format!("{mobile} gave {found:?}"));
                            }
                        }
                        reads.fetch_add(1, Ordering::SeqCst);
                    }
                }
                misses
            })
        })
        .collect();

    rebuild(env.log.clone(), &env.read, 1_000)
        .await
        .expect("rebuild");
    done.store(true, Ordering::SeqCst);
    let mut misses = Vec::new();
    for reader in readers {
        misses.extend(reader.await.unwrap());
    }
    assert!(
        misses.is_empty(),
        "{} reads missed during the rebuild, first: {:?}",
        misses.len(),
        misses.first()
    );
    assert!(
        reads.load(Ordering::SeqCst) > probes.len(),
        "the readers ran during the rebuild"
    );
}

async fn a_rebuild_while_the_live_projector_runs_and_commands_commit_ends_in_the_clean_state(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    // Generated accounts live at 3…; the writer's own accounts are numbered from 1….
    insert_history(
        env.store(),
        &moved_to(sample::history(500, 15_000, 89), '3'),
    )
    .await;
    let writer = Arc::new(Writer::with_wall_clock(env.store()));
    let projector = Arc::new(env.projector().with_batch_size(200));
    let done = Arc::new(AtomicBool::new(false));
    let written = with_running(projector.clone(), writer.executor().commits(), async {
        let writing = {
            let (writer, done) = (writer.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = 0u32;
                // At least a few commands, and more while the rebuild runs.
                while n < 20 || !done.load(Ordering::SeqCst) {
                    let id = writer.register_with_mobile(&mobile(n)).await;
                    let ip = format!("10.0.{}.{}", n / 200, n % 200 + 1);
                    writer.assign_server(&id, "ins-1", &ip).await;
                    writer
                        .change_recovery_mobile(&id, &mobile(1_000 + n % 7))
                        .await;
                    n += 1;
                }
                n
            })
        };
        rebuild(env.log.clone(), &env.read, 500)
            .await
            .expect("rebuild");
        done.store(true, Ordering::SeqCst);
        writing.await.unwrap()
    })
    .await;
    assert!(written >= 20);
    env.settle(&projector).await;

    let clean = env.sibling().await;
    copy_log(env.store(), clean.store()).await;
    clean.project().await;
    assert_same_state(
        &dump(env.store()).await,
        &dump(clean.store()).await,
        "a rebuild beside the live projector",
    );
}
