//! The contract of each write-side store trait (ADR 0007): one test body per behaviour, run on
//! the PostgreSQL and on the SQLite implementation. A new query gets its case here.

use std::time::Duration;

use commands::claims::{ClaimKind, ClaimRow};
use commands::limits::TargetLimit;
use commands::store::{ResetIndexEntry, SerializedEvent, StoreError};
use cqrs_es::persist::PersistenceError;
use serde_json::json;
use testkit::prelude::*;

on_both_backends!(
    event_store_appends_and_reads_streams_back_in_order,
    event_store_refuses_a_taken_sequence_and_writes_nothing_of_the_batch,
    event_store_indexes_reset_tokens_with_their_events_only,
    event_store_reports_heads_and_chain_hashes,
    event_store_numbers_accounts_without_reuse,
    claim_store_keeps_one_owner_and_its_state,
    limit_store_counts_sends_and_requests,
    limit_store_admits_one_of_many_concurrent_sends,
    limit_store_admits_exactly_the_daily_cap_of_many_concurrent_sends,
    limit_store_forgets_old_sends_and_still_counts_exactly,
);

const TYPE: &str = "Contract";

fn event(id: &str, sequence: usize, hash: &str) -> SerializedEvent {
    SerializedEvent::new(
        id.to_owned(),
        sequence,
        TYPE.to_owned(),
        "Happened".to_owned(),
        "1".to_owned(),
        json!({ "n": sequence }),
        json!({ "chain_hash": hash }),
    )
}

fn reset(token: &str, account: &str) -> ResetIndexEntry {
    ResetIndexEntry {
        token_digest: token.to_owned(),
        account_id: account.to_owned(),
        expires_at: t0(),
    }
}

async fn event_store_appends_and_reads_streams_back_in_order(db: TestDatabase) {
    let events = db.store.events();
    let batch = [
        event("a", 1, "h1"),
        event("a", 2, "h2"),
        event("a", 3, "h3"),
    ];
    events.append(TYPE, &batch, &[]).await.unwrap();
    assert_eq!(events.stream(TYPE, "a", 0).await.unwrap(), batch);
    assert_eq!(events.stream(TYPE, "a", 2).await.unwrap(), batch[2..]);
    assert!(events.stream("Other", "a", 0).await.unwrap().is_empty());
    let recorded = events.stream_after(TYPE, "a", 1, 1).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].sequence, &recorded[0].payload),
        (2, &json!({"n": 2}))
    );
    let log = read_log(&db.store, 3).await;
    assert_eq!(
        log.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

async fn event_store_refuses_a_taken_sequence_and_writes_nothing_of_the_batch(db: TestDatabase) {
    let events = db.store.events();
    events
        .append(TYPE, &[event("a", 1, "h1")], &[])
        .await
        .unwrap();
    let lost = events
        .append(
            TYPE,
            &[event("a", 2, "x2"), event("a", 1, "x1")],
            &[reset("d-lost", "a")],
        )
        .await;
    assert!(matches!(
        lost,
        Err(StoreError::Persistence(
            PersistenceError::OptimisticLockError
        ))
    ));
    assert_eq!(events.stream(TYPE, "a", 0).await.unwrap().len(), 1);
    assert_eq!(db.store.reset_token_owner("d-lost").await.unwrap(), None);
}

async fn event_store_indexes_reset_tokens_with_their_events_only(db: TestDatabase) {
    let events = db.store.events();
    (events.append(TYPE, &[event("a", 1, "h1")], &[reset("d1", "a")]))
        .await
        .unwrap();
    // Read at once, no waiting: the row committed with the event.
    assert_eq!(
        db.store.reset_token_owner("d1").await.unwrap().as_deref(),
        Some("a")
    );
    // A newer token of the account replaces the older one.
    (events.append(TYPE, &[event("a", 2, "h2")], &[reset("d2", "a")]))
        .await
        .unwrap();
    assert_eq!(db.store.reset_token_owner("d1").await.unwrap(), None);
    assert_eq!(
        db.store.reset_token_owner("d2").await.unwrap().as_deref(),
        Some("a")
    );
}

async fn event_store_reports_heads_and_chain_hashes(db: TestDatabase) {
    let events = db.store.events();
    let batch = [
        event("b", 1, "b1"),
        event("a", 1, "a1"),
        event("a", 2, "a2"),
    ];
    events.append(TYPE, &batch, &[]).await.unwrap();
    let heads = db.store.stream_heads(TYPE).await.unwrap();
    let heads: Vec<_> = heads
        .iter()
        .map(|h| (h.aggregate_id.as_str(), h.sequence, h.chain_hash.as_str()))
        .collect();
    assert_eq!(heads, [("a", 2, "a2"), ("b", 1, "b1")]);
    let keys = [
        ("a".to_owned(), 2),
        ("a".to_owned(), 9),
        ("b".to_owned(), 1),
    ];
    assert_eq!(
        db.store.chain_hashes_at(TYPE, &keys).await.unwrap(),
        [Some("a2".to_owned()), None, Some("b1".to_owned())]
    );
    let walk = db
        .store
        .streams_after(TYPE, Some(("a", 1)), 10)
        .await
        .unwrap();
    let walk: Vec<_> = walk
        .iter()
        .map(|e| (e.aggregate_id.as_str(), e.sequence))
        .collect();
    assert_eq!(walk, [("a", 2), ("b", 1)]);
}

async fn event_store_numbers_accounts_without_reuse(db: TestDatabase) {
    let first = db.store.next_account_number().await.unwrap();
    let second = db.store.next_account_number().await.unwrap();
    assert_eq!(first, 100_000_000_001);
    assert_eq!(second, first + 1);
}

async fn claim_store_keeps_one_owner_and_its_state(db: TestDatabase) {
    let claims = db.store.claims();
    let kind = ClaimKind::LoginEmail;
    assert!(claims.insert_pending(kind, "v", "a").await.unwrap());
    assert!(!claims.insert_pending(kind, "v", "b").await.unwrap());
    assert!(claims
        .insert_pending(ClaimKind::ServerIp, "v", "b")
        .await
        .unwrap());
    let hour = Duration::from_secs(3600);
    let row = |owner: &str, held| ClaimRow {
        owner: owner.to_owned(),
        held,
        stale: false,
    };
    assert_eq!(
        claims.claim_row(kind, "v", hour).await.unwrap(),
        Some(row("a", false))
    );
    claims.mark_held(kind, "v", "b").await.unwrap(); // not b's: nothing changes
    assert_eq!(
        claims.claim_row(kind, "v", hour).await.unwrap(),
        Some(row("a", false))
    );
    claims.mark_held(kind, "v", "a").await.unwrap();
    assert_eq!(
        claims.claim_row(kind, "v", hour).await.unwrap(),
        Some(row("a", true))
    );
    claims.delete(kind, "v", "a", true).await.unwrap(); // held: a pending-only delete keeps it
    assert!(claims.claim_row(kind, "v", hour).await.unwrap().is_some());
    claims.delete(kind, "v", "a", false).await.unwrap();
    assert_eq!(claims.claim_row(kind, "v", hour).await.unwrap(), None);
}

async fn limit_store_counts_sends_and_requests(db: TestDatabase) {
    let limits = db.store.limits();
    let limit = TargetLimit::CODES;
    let at = |seconds: i64| t0() + chrono::Duration::seconds(seconds);
    assert_eq!(
        limits.admit_send("t", "p", limit, at(0)).await.unwrap(),
        Ok(())
    );
    let refused = limits.admit_send("t", "p", limit, at(30)).await.unwrap();
    assert_eq!(refused.map_err(|r| r.seconds()), Err(30));
    // A refusal is not counted: the cooldown runs from the last admitted send.
    assert_eq!(
        limits.admit_send("t", "p", limit, at(60)).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        limits
            .admit_send("t", "other", limit, at(61))
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(limits.count_request("ip", "r", 7).await.unwrap(), 1);
    assert_eq!(limits.count_request("ip", "r", 7).await.unwrap(), 2);
    assert_eq!(limits.count_request("ip", "r", 8).await.unwrap(), 1);
    limits.prune_request_windows(8).await.unwrap();
    assert_eq!(limits.count_request("ip", "r", 7).await.unwrap(), 1);
}

/// Check-then-insert is exact: of many admissions of one target at the same instant, the
/// cooldown lets exactly one through (the losers of the race for the next send number decide
/// again on what the winner wrote).
async fn limit_store_admits_one_of_many_concurrent_sends(db: TestDatabase) {
    // Many rounds of 16 admissions released together, each round on a target of its own: a
    // check-then-insert that is not exact lets two through in some round.
    for round in 0..20 {
        let target = format!("same-{round}");
        let admitted = admitted_of_concurrent(&db, &target, TargetLimit::CODES, 16, t0()).await;
        assert_eq!(admitted, 1, "round {round}");
    }
}

/// `n` admissions of `target` under `limit` at `at`, released together: how many got through.
async fn admitted_of_concurrent(
    db: &TestDatabase,
    target: &str,
    limit: TargetLimit,
    n: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> usize {
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let tries: Vec<_> = (0..n)
        .map(|_| {
            let (store, start, target) = (db.store.clone(), start.clone(), target.to_owned());
            tokio::spawn(async move {
                start.wait().await;
                (store.limits().admit_send(&target, "p", limit, at).await).unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for attempt in tries {
        admitted += usize::from(attempt.await.unwrap().is_ok());
    }
    admitted
}

/// Without a cooldown every admission races for the next number until the day's cap is
/// reached: exactly the cap gets through, however many ask at once.
async fn limit_store_admits_exactly_the_daily_cap_of_many_concurrent_sends(db: TestDatabase) {
    let limit = TargetLimit::ACCOUNT_INFO;
    for round in 0..5 {
        let target = format!("capped-{round}");
        let admitted = admitted_of_concurrent(&db, &target, limit, 24, t0()).await;
        assert_eq!(admitted as i64, limit.per_day, "round {round}");
    }
}

/// Pruning forgets what no longer counts but keeps each target's newest send, so the sends
/// after it are still numbered past it and concurrent admissions stay exact.
async fn limit_store_forgets_old_sends_and_still_counts_exactly(db: TestDatabase) {
    let limits = db.store.limits();
    let day = chrono::Duration::days(1);
    for minute in 0..3 {
        let at = t0() + chrono::Duration::minutes(minute);
        assert_eq!(
            limits
                .admit_send("old", "p", TargetLimit::CODES, at)
                .await
                .unwrap(),
            Ok(())
        );
    }
    limits.prune_sends(t0() + day * 2).await.unwrap();
    let newest = limits.newest_send("old", "p").await.unwrap();
    assert_eq!(
        newest,
        Some(t0() + chrono::Duration::minutes(2)),
        "the newest is kept"
    );
    let later = t0() + day * 3;
    assert_eq!(
        admitted_of_concurrent(&db, "old", TargetLimit::CODES, 16, later).await,
        1
    );
    // And the cooldown runs from the send just admitted.
    let refused = limits
        .admit_send(
            "old",
            "p",
            TargetLimit::CODES,
            later + chrono::Duration::seconds(10),
        )
        .await
        .unwrap();
    assert_eq!(refused.map_err(|r| r.seconds()), Err(50));
}
