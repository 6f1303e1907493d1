//! Audit over more events than one read takes (a stream read is 1,000 events, a `verify --all`
//! read 10,000, an export read 5,000): a generated history of 12,000 events over 8 accounts,
//! written with real chain hashes, verifies, replays and exports whole, and an event altered at
//! a page boundary is still found at its sequence.

#[macro_use]
mod support_audit;

use chrono::Duration;
use domain::chain::GENESIS;
use domain::values::AccountId;
use domain::Account;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use support_audit::*;
use testkit::sample;
use testkit::TestDatabase;

on_both_backends!(a_history_larger_than_every_page_is_verified_replayed_and_exported_whole);

async fn a_history_larger_than_every_page_is_verified_replayed_and_exported_whole(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let history = sample::history(8, 12_000, 7);
    insert_chained(env.store(), &history).await;
    let end = t0() + Duration::minutes(12_000);

    let read = std::sync::atomic::AtomicU64::new(0);
    let all = env.audit.verify_all_counting(&read).await.unwrap();
    assert!(all.ok(), "{:?}", all.broken);
    assert_eq!((all.streams, all.events), (8, 12_000));
    // What a progress display shows at the end is what the walk read.
    assert_eq!(read.into_inner(), 12_000);

    // The event that opens the second read of `verify --all`, in a stream the boundary cuts.
    let mut keys: Vec<(String, u64)> = history
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    keys.sort();
    let (id, sequence) = keys[10_000].clone();
    assert_eq!(keys[9_999].0, id, "the stream straddles the boundary");
    let account = AccountId::parse(&id).unwrap();
    let length = keys.iter().filter(|(i, _)| *i == id).count();
    assert!(length > 1_000, "the stream is longer than one stream read");

    // The replay folds the whole stream, as the write side does.
    let written = env
        .executor
        .load::<Account>(&id)
        .await
        .unwrap()
        .state
        .profile(end, REMINDER_DAYS);
    assert!(written.is_some());
    assert_eq!(env.audit.state_at(&account, end).await.unwrap(), written);

    // The export holds every event in commit order, and its root is over every line.
    let mut out = Vec::new();
    let summary = env.audit.export(t0(), end, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12_001);
    let exported: Vec<(String, u64)> = lines[..12_000]
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["account_id"].as_str().unwrap().to_owned(),
                v["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    let written_order: Vec<(String, u64)> = history
        .iter()
        .map(|e| (e.aggregate_id.clone(), e.sequence))
        .collect();
    assert!(exported == written_order, "the export is in commit order");
    let root = lines[..12_000]
        .iter()
        .fold(GENESIS.to_owned(), |root, line| {
            hex::encode(Sha256::digest(format!("{root}{line}")))
        });
    assert_eq!(summary.root_hash, root);

    // Alter that event.
    let rows = stored(env.store(), &account).await;
    let row = rows.iter().find(|r| r.sequence == sequence).unwrap();
    let mut payload = row.payload.clone();
    payload["forged"] = json!(true);
    set_row(
        env.store(),
        &account,
        sequence,
        &row.event_type,
        &payload,
        &row.metadata,
    )
    .await;

    let verification = env.audit.verify(&account).await.unwrap().unwrap();
    assert_eq!(verification.first_broken_sequence, Some(sequence));
    assert_eq!(verification.events_checked, sequence);
    let all = env.audit.verify_all().await.unwrap();
    assert_eq!(all.events, 12_000);
    let broken: Vec<_> = all
        .broken
        .iter()
        .map(|b| (b.account_id.clone(), b.verification.first_broken_sequence))
        .collect();
    assert_eq!(broken, [(id, Some(sequence))]);
}
