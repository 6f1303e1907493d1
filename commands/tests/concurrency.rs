//! Many concurrent commands on one stream: the executor's conflict retry must turn every lost
//! race into a fresh decision, so every command is acknowledged, stored exactly once, and the
//! stream's sequences stay contiguous.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use commands::{CommandContext, Committed, Executor};
use domain::Account;
use testkit::prelude::*;
use testkit::TestDatabase;
use tokio::sync::Barrier;
use tracing::instrument::WithSubscriber as _;

const WRITERS: u32 = 50;

on_both_backends!(
    fifty_concurrent_commands_on_one_account_are_all_acknowledged_and_stored_exactly_once,
    writers_released_together_on_one_stream_lose_races_and_still_all_commit,
    a_read_as_of_a_stream_head_uses_the_memo_only_when_it_is_that_far,
);

/// `load_as_of` (GET /v1/me's one round trip): the memo answers when it has reached the head
/// the caller read; a head that another process moved on makes it read the stream.
async fn a_read_as_of_a_stream_head_uses_the_memo_only_when_it_is_that_far(db: TestDatabase) {
    let here = executor(&db.store);
    let elsewhere = executor(&db.store);
    let id = register_by_mobile(&here, 1).await;
    let memo = here.load::<Account>(id.as_str()).await.unwrap();
    elsewhere
        .execute::<Account>(id.as_str(), assign_server(1), &CommandContext::system())
        .await
        .unwrap();

    let as_remembered = here.load_as_of::<Account>(id.as_str(), memo.sequence).await;
    let as_remembered = as_remembered.unwrap();
    assert_eq!(
        as_remembered.sequence, memo.sequence,
        "no read: the memo is that far"
    );
    assert!(as_remembered.state.servers.is_empty());

    let head = stream_rows(&db.store, id.as_str()).await.len() as u64;
    let current = here.load_as_of::<Account>(id.as_str(), head).await.unwrap();
    assert_eq!(
        current.sequence, head,
        "read: another process moved the stream on"
    );
    assert_eq!(current.state.servers.len(), 1);
    let again = here.load_as_of::<Account>(id.as_str(), head).await.unwrap();
    assert_eq!(
        (again.sequence, again.state.servers.len()),
        (head, 1),
        "remembered"
    );
}

async fn fifty_concurrent_commands_on_one_account_are_all_acknowledged_and_stored_exactly_once(
    db: TestDatabase,
) {
    let executor = executor(&db.store);
    let id = register_by_mobile(&executor, 1).await;

    let acknowledged = run_writers(std::slice::from_ref(&executor), id.as_str(), None, None).await;

    let rows = stream_rows(&db.store, id.as_str()).await;
    let sequences: Vec<u64> = rows.iter().map(|r| r.sequence).collect();
    assert_eq!(
        sequences,
        (1..=u64::from(WRITERS) + 1).collect::<Vec<_>>(),
        "sequences are contiguous, without gaps or duplicates"
    );
    let mut stored: HashMap<String, u64> = HashMap::new();
    for row in rows.iter().filter(|r| r.event_type == "ServerIpAssigned") {
        let instance = row.payload["instance_id"].as_str().unwrap().to_owned();
        assert!(
            stored.insert(instance.clone(), row.sequence).is_none(),
            "{instance} is stored twice"
        );
    }
    assert_eq!(stored.len(), WRITERS as usize);
    for (n, committed) in acknowledged {
        assert_eq!(
            stored.get(&instance_id(n)),
            Some(&committed.sequence),
            "command {n} is stored at the sequence it was acknowledged with"
        );
    }
    let state = executor.load::<Account>(id.as_str()).await.unwrap().state;
    assert_eq!(state.servers.len(), WRITERS as usize);
    assert_eq!(
        verify_rows(&rows).first_broken_sequence,
        None,
        "concurrent writers keep the chain intact"
    );
}

async fn writers_released_together_on_one_stream_lose_races_and_still_all_commit(db: TestDatabase) {
    // Five executors stand for five processes: writers in one process take turns on a
    // per-stream lock, writers in different processes race for the stream's next sequence.
    let executors: Vec<Executor> = (0..5).map(|_| executor(&db.store)).collect();
    let id = register_by_mobile(&executors[0], 1).await;
    let retries = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(WRITERS as usize));

    let acknowledged = run_writers(
        &executors,
        id.as_str(),
        Some(barrier),
        Some(retries.clone()),
    )
    .await;

    assert_eq!(acknowledged.len(), WRITERS as usize);
    assert!(
        retries.load(Ordering::SeqCst) > 0,
        "writers started together must lose races for the stream and decide again"
    );
    assert_eq!(
        stream_rows(&db.store, id.as_str()).await.len(),
        WRITERS as usize + 1
    );
}

/// Runs `WRITERS` `AssignServerIp` commands on `id` at once, each in its own task, and returns
/// the acknowledgements by command number. With a barrier, the tasks start deciding together;
/// with a counter, the executor's conflict retries are counted.
async fn run_writers(
    executors: &[Executor],
    id: &str,
    barrier: Option<Arc<Barrier>>,
    retries: Option<Arc<AtomicUsize>>,
) -> Vec<(u32, Committed<Account>)> {
    let tasks: Vec<_> = (1..=WRITERS)
        .map(|n| {
            let executor = executors[n as usize % executors.len()].clone();
            let id = id.to_owned();
            let barrier = barrier.clone();
            let dispatch = retries
                .clone()
                .map(|count| tracing::Dispatch::new(RetryCounter(count)));
            tokio::spawn(async move {
                if let Some(barrier) = barrier {
                    barrier.wait().await;
                }
                let context = CommandContext::system();
                let command = executor.execute::<Account>(&id, assign_server(n), &context);
                let result = match dispatch {
                    Some(dispatch) => command.with_subscriber(dispatch).await,
                    None => command.await,
                };
                (n, result)
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for task in tasks {
        match task.await.expect("a writer task finished") {
            (n, Ok(committed)) => acknowledged.push((n, committed)),
            (n, Err(e)) => failed.push(format!("command {n}: {e}")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {WRITERS} concurrent commands failed: {failed:#?}",
        failed.len()
    );
    acknowledged
}

/// Counts the executor's "deciding again" events: WARN events of `commands::executor` that
/// carry an `attempt` field.
struct RetryCounter(Arc<AtomicUsize>);

impl tracing::Subscriber for RetryCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("commands::executor")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::WARN && metadata.fields().field("attempt").is_some()
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
