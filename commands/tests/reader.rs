//! The global reader (`Store::read_after`): every event exactly once and in per-stream order
//! while many tasks write, and, on PostgreSQL, never past a transaction that is still open
//! (DESIGN §3.1). SQLite has one writer at a time, so it gets the concurrent suite only.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use commands::{Checkpoint, CommandContext, RecordedEvent, Store};
use domain::Account;
use testkit::prelude::*;
use testkit::TestDatabase;

const WRITERS: u32 = 32;
const COMMANDS_PER_WRITER: u32 = 20;
const BATCH: u32 = 50;

on_both_backends!(the_reader_returns_every_event_once_and_in_stream_order_while_32_tasks_write);

async fn the_reader_returns_every_event_once_and_in_stream_order_while_32_tasks_write(
    db: TestDatabase,
) {
    let executor = executor(&db.store);
    let accounts = Arc::new(register_many(&executor, WRITERS).await);

    let writing = Arc::new(AtomicBool::new(true));
    let reader = {
        let store = db.store.clone();
        let writing = writing.clone();
        tokio::spawn(async move {
            let mut checkpoint = Checkpoint::default();
            let mut read = Vec::new();
            let mut batches_while_writing = 0;
            while writing.load(Ordering::SeqCst) {
                let batch = store
                    .read_after(checkpoint, BATCH)
                    .await
                    .expect("read_after");
                assert!(batch.len() <= BATCH as usize, "a batch respects its limit");
                if let Some(last) = batch.last() {
                    checkpoint = last.checkpoint;
                    batches_while_writing += 1;
                    read.extend(batch);
                } else {
                    // Poll interval of a reader that has caught up.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            (checkpoint, read, batches_while_writing)
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|task| {
            let executor = executor.clone();
            let accounts = accounts.clone();
            tokio::spawn(async move {
                for j in 0..COMMANDS_PER_WRITER {
                    // One stream per writer: what is under test is the global order across
                    // concurrent transactions, not the executor's races (tests/concurrency.rs).
                    let account = &accounts[task as usize];
                    let n = task * COMMANDS_PER_WRITER + j + 1;
                    executor
                        .execute::<Account>(
                            account.as_str(),
                            assign_server(n),
                            &CommandContext::system(),
                        )
                        .await
                        .expect("every command commits");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer finished");
    }
    writing.store(false, Ordering::SeqCst);
    let (mut checkpoint, mut read, batches_while_writing) = reader.await.unwrap();
    assert!(
        batches_while_writing > 0,
        "the reader read while the writers ran"
    );

    // Drain what the writers committed last.
    let total = event_count(&db.store).await;
    assert_eq!(total, (WRITERS + WRITERS * COMMANDS_PER_WRITER) as usize);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while read.len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader returned {} of {total} events before the deadline",
            read.len()
        );
        let batch = db.store.read_after(checkpoint, BATCH).await.unwrap();
        match batch.last() {
            Some(last) => {
                checkpoint = last.checkpoint;
                read.extend(batch);
            }
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(
        db.store
            .read_after(checkpoint, BATCH)
            .await
            .unwrap()
            .is_empty(),
        "nothing is left after the last event"
    );

    assert_read_once_in_order(&read, &all_keys(&db.store).await);
}

/// Every key of the table read exactly once, checkpoints increasing, and each stream's
/// sequences in increasing order.
fn assert_read_once_in_order(read: &[RecordedEvent], table: &[(String, u64)]) {
    let keys: Vec<(String, u64)> = read
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    let distinct: HashSet<&(String, u64)> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "no event is returned twice");
    let in_table: HashSet<&(String, u64)> = table.iter().collect();
    assert_eq!(distinct, in_table, "every stored event is returned");
    assert!(
        read.windows(2).all(|w| w[0].checkpoint < w[1].checkpoint),
        "checkpoints strictly increase"
    );
    let mut last: HashMap<&str, u64> = HashMap::new();
    for event in read {
        let previous = last
            .insert(&event.aggregate_id, event.sequence)
            .unwrap_or(0);
        assert_eq!(
            event.sequence,
            previous + 1,
            "stream {} is read in sequence order",
            event.aggregate_id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_the_reader_waits_for_an_open_transaction_and_then_returns_it_and_all_later_events(
) {
    let db = TestDatabase::postgres().await;
    let pool = db.raw.postgres();
    let executor = executor(&db.store);
    let accounts = register_many(&executor, 4).await;
    let before = read_whole_log(&db.store).await;
    assert_eq!(before.len(), 4);
    let checkpoint = before.last().unwrap().checkpoint;

    // A writer whose transaction stays open: its event has a smaller xid than everything
    // committed after it.
    let held_stream = register_target(&db.store).await;
    let mut held = pool.begin().await.unwrap();
    let held_xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&mut *held)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
                             payload, metadata) \
         VALUES ('Account', $1, 1, 'AccountRecoveryRequested', '1', \
                 '{\"method\":\"mobile\",\"recovery_id\":null}', '{}')",
    )
    .bind(&held_stream)
    .execute(&mut *held)
    .await
    .unwrap();

    for n in 1..=10 {
        executor
            .execute::<Account>(
                accounts[n as usize % 4].as_str(),
                assign_server(n),
                &CommandContext::system(),
            )
            .await
            .unwrap();
    }
    let later: Vec<(String, u64, i64)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, tx_id::text::bigint FROM events \
          WHERE sequence > 1 ORDER BY position",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, seq, tx): (String, i64, i64)| (id, seq as u64, tx))
    .collect();
    assert_eq!(
        later.len(),
        10,
        "ten events committed while the writer was open"
    );
    assert!(later.iter().all(|(_, _, tx)| *tx > held_xid));

    for _ in 0..3 {
        let passed = db.store.read_after(checkpoint, 1000).await.unwrap();
        assert!(
            passed.is_empty(),
            "the reader returned {} events committed after a transaction that is still \
             open, so it would skip that transaction's event: {:?}",
            passed.len(),
            passed
                .iter()
                .map(|e| (&e.aggregate_id, e.sequence))
                .collect::<Vec<_>>()
        );
    }

    held.commit().await.unwrap();

    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut after = Vec::new();
    let mut next = checkpoint;
    while after.len() < 11 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "after the commit the reader returned {} of 11 events",
            after.len()
        );
        let batch = db.store.read_after(next, 1000).await.unwrap();
        match batch.last() {
            Some(last) => {
                next = last.checkpoint;
                after.extend(batch);
            }
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert_eq!(after.len(), 11, "nothing returned twice");
    assert_eq!(
        (after[0].aggregate_id.as_str(), after[0].checkpoint.tx_id),
        (held_stream.as_str(), held_xid),
        "the late-committing event comes first: its transaction began first"
    );
    let returned: HashSet<(String, u64)> = after[1..]
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    let expected: HashSet<(String, u64)> =
        later.into_iter().map(|(id, seq, _)| (id, seq)).collect();
    assert_eq!(returned, expected, "none of the later events is skipped");
    let mut whole = before;
    whole.extend(after);
    assert_read_once_in_order(&whole, &all_keys(&db.store).await);
}

/// A fresh account id for a stream written by hand.
async fn register_target(store: &Store) -> String {
    store.next_account_number().await.unwrap().to_string()
}
