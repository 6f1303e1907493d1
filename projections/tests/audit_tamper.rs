//! Tamper evidence (issue 7, DESIGN §3.5, SPEC §5): accounts written through the real write
//! path, then altered directly in the `events` table; `verify` (one account) and `verify_all`
//! report each alteration at the right first broken sequence, on PostgreSQL and on SQLite.

#[macro_use]
mod support_audit;

use domain::chain::{self, Link};
use domain::values::AccountId;
use projections::audit::StreamVerification;
use serde_json::json;
use support_audit::*;
use testkit::TestDatabase;

on_both_backends!(
    an_untouched_account_verifies_with_every_event_checked,
    an_edited_payload_is_reported_at_that_event,
    a_deleted_middle_event_is_reported_at_its_sequence,
    deleting_the_newest_events_after_an_anchor_is_reported_at_the_first_missing_sequence,
    later_anchors_do_not_accept_a_stream_whose_newest_events_were_deleted,
    an_account_whose_every_event_was_deleted_after_an_anchor_is_broken_at_sequence_one,
    two_swapped_events_are_reported_at_the_first_of_them,
    a_forged_event_inserted_in_the_middle_is_reported_at_its_sequence,
    a_forged_event_appended_with_copied_metadata_is_reported_at_its_sequence,
    verify_all_reports_exactly_the_broken_streams_with_their_sequences,
    rewritten_anchor_heads_no_longer_fold_into_the_anchor_root,
    an_unknown_account_has_nothing_to_verify,
);

fn broken_at(sequence: u64, events_checked: u64) -> Option<StreamVerification> {
    Some(StreamVerification {
        ok: false,
        events_checked,
        first_broken_sequence: Some(sequence),
    })
}

async fn verify(env: &Env, id: &AccountId) -> Option<StreamVerification> {
    env.audit.verify(id).await.expect("verify")
}

async fn first_broken(env: &Env, id: &AccountId) -> Option<u64> {
    verify(env, id)
        .await
        .expect("the account has events")
        .first_broken_sequence
}

/// Five events through the executor, verified before anything is touched.
async fn five_events(env: &Env) -> AccountId {
    let id = env.stream_of(1, 5).await;
    assert_eq!(
        verify(env, &id).await,
        Some(StreamVerification {
            ok: true,
            events_checked: 5,
            first_broken_sequence: None
        }),
        "the stream verifies before it is tampered with"
    );
    id
}

async fn an_untouched_account_verifies_with_every_event_checked(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    env.audit.create_anchor(env.now()).await.unwrap();
    env.exec(
        &id,
        domain::AccountCommand::ReleaseServerIp {
            instance_id: "i-1004".into(),
        },
    )
    .await;

    let verification = verify(&env, &id).await.unwrap();
    assert_eq!(
        verification,
        StreamVerification {
            ok: true,
            events_checked: 6,
            first_broken_sequence: None
        },
        "an event after the anchor is fine"
    );
    let all = env.audit.verify_all().await.unwrap();
    assert!(all.ok(), "{all:?}");
    assert_eq!((all.streams, all.events), (1, 6));
}

async fn an_edited_payload_is_reported_at_that_event(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    let rows = stored(env.store(), &id).await;
    let mut payload = rows[2].payload.clone();
    payload["recovery_id"] = json!("recovery-forged");

    set_row(
        env.store(),
        &id,
        3,
        &rows[2].event_type,
        &payload,
        &rows[2].metadata,
    )
    .await;

    assert_eq!(verify(&env, &id).await, broken_at(3, 3));
}

async fn a_deleted_middle_event_is_reported_at_its_sequence(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;

    tamper(
        env.store(),
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 3",
        &id,
    )
    .await;

    assert_eq!(stored(env.store(), &id).await.len(), 4);
    assert_eq!(first_broken(&env, &id).await, Some(3));
}

async fn deleting_the_newest_events_after_an_anchor_is_reported_at_the_first_missing_sequence(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    env.audit.create_anchor(env.now()).await.unwrap();

    tamper(
        env.store(),
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence >= 4",
        &id,
    )
    .await;

    // The chain alone cannot tell: what is left is a perfect chain of three events.
    let rows = stored(env.store(), &id).await;
    let chain_only = chain::verify(rows.iter().map(|e| Link {
        sequence: e.sequence,
        event_type: &e.event_type,
        event_version: &e.event_version,
        payload: &e.payload,
        metadata: &e.metadata,
    }));
    assert_eq!(
        (chain_only.events_checked, chain_only.first_broken_sequence),
        (3, None)
    );
    // The anchor can.
    assert_eq!(verify(&env, &id).await, broken_at(4, 3));
}

async fn later_anchors_do_not_accept_a_stream_whose_newest_events_were_deleted(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    env.audit.create_anchor(env.now()).await.unwrap();
    tamper(
        env.store(),
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 5",
        &id,
    )
    .await;

    // A write side that never saw event 5 appends a new event 5, then 6: the stream is a
    // valid chain again, and longer than the anchored head.
    let other = env.other_executor();
    for n in [2_001, 2_002] {
        other
            .execute::<domain::Account>(
                id.as_str(),
                domain::AccountCommand::AssignServerIp {
                    instance_id: format!("i-{n}"),
                    ip: server_ip(n),
                },
                &request_context(&id),
            )
            .await
            .unwrap();
        env.audit.create_anchor(env.now()).await.unwrap();
    }

    let rows = stored(env.store(), &id).await;
    assert_eq!(rows.last().map(|e| e.sequence), Some(6));
    assert_eq!(first_broken(&env, &id).await, Some(5));
    let anchored = env.audit.anchored_head(id.as_str()).await.unwrap().unwrap();
    assert_eq!(anchored.sequence, 5, "the anchored head did not move");
}

async fn an_account_whose_every_event_was_deleted_after_an_anchor_is_broken_at_sequence_one(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let kept = env.stream_of(1, 3).await;
    let erased = env.stream_of(2, 3).await;
    env.audit.create_anchor(env.now()).await.unwrap();

    tamper(
        env.store(),
        "DELETE FROM events WHERE aggregate_id = $1",
        &erased,
    )
    .await;

    assert_eq!(verify(&env, &erased).await, broken_at(1, 0));
    let all = env.audit.verify_all().await.unwrap();
    assert_eq!(all.streams, 2);
    assert_eq!(all.broken.len(), 1);
    assert_eq!(all.broken[0].account_id, erased.as_str());
    assert_eq!(all.broken[0].verification.first_broken_sequence, Some(1));
    assert_eq!(
        verify(&env, &kept).await.unwrap().first_broken_sequence,
        None
    );
}

async fn two_swapped_events_are_reported_at_the_first_of_them(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    let rows = stored(env.store(), &id).await;
    assert_ne!(rows[1].event_type, rows[2].event_type);

    // Each keeps its sequence number but takes the other's type, payload and metadata.
    set_row(
        env.store(),
        &id,
        2,
        &rows[2].event_type,
        &rows[2].payload,
        &rows[2].metadata,
    )
    .await;
    set_row(
        env.store(),
        &id,
        3,
        &rows[1].event_type,
        &rows[1].payload,
        &rows[1].metadata,
    )
    .await;

    assert_eq!(verify(&env, &id).await, broken_at(2, 2));
}

async fn a_forged_event_inserted_in_the_middle_is_reported_at_its_sequence(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    let rows = stored(env.store(), &id).await;

    // Make room at sequence 2 (through a detour, as the key is checked row by row), then
    // insert a forged server assignment carrying the real event 2's metadata and chain hash.
    tamper(
        env.store(),
        "UPDATE events SET sequence = sequence + 1000 WHERE aggregate_id = $1 AND sequence >= 2",
        &id,
    )
    .await;
    tamper(
        env.store(),
        "UPDATE events SET sequence = sequence - 999 WHERE aggregate_id = $1 AND sequence > 1000",
        &id,
    )
    .await;
    let forged = json!({
        "instance_id": "i-forged",
        "public_ip": "192.0.2.66",
        "assigned_at": rows[1].payload["assigned_at"].clone(),
    });
    insert_row(
        env.store(),
        &id,
        2,
        "ServerIpAssigned",
        &forged,
        &rows[1].metadata,
    )
    .await;

    assert_eq!(stored(env.store(), &id).await.len(), 6);
    assert_eq!(verify(&env, &id).await, broken_at(2, 2));
}

async fn a_forged_event_appended_with_copied_metadata_is_reported_at_its_sequence(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let id = five_events(&env).await;
    let rows = stored(env.store(), &id).await;
    let forged = json!({
        "instance_id": "i-forged",
        "public_ip": "192.0.2.66",
        "assigned_at": "2026-11-26T10:10:00Z",
    });

    insert_row(
        env.store(),
        &id,
        6,
        "ServerIpAssigned",
        &forged,
        &rows[4].metadata,
    )
    .await;

    assert_eq!(verify(&env, &id).await, broken_at(6, 6));
}

async fn verify_all_reports_exactly_the_broken_streams_with_their_sequences(db: TestDatabase) {
    let env = Env::new(db).await;
    let edited = env.stream_of(1, 4).await;
    let intact = env.stream_of(2, 4).await;
    let shortened = env.stream_of(3, 4).await;
    let also_intact = env.stream_of(4, 2).await;
    env.audit.create_anchor(env.now()).await.unwrap();

    let rows = stored(env.store(), &edited).await;
    let mut metadata = rows[1].metadata.clone();
    metadata["actor"] = json!("account:100000000099");
    set_row(
        env.store(),
        &edited,
        2,
        &rows[1].event_type,
        &rows[1].payload,
        &metadata,
    )
    .await;
    tamper(
        env.store(),
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 4",
        &shortened,
    )
    .await;

    let all = env.audit.verify_all().await.unwrap();
    assert!(!all.ok());
    assert!(all.anchor_intact);
    assert_eq!((all.streams, all.events), (4, 13));
    let broken: Vec<_> = all
        .broken
        .iter()
        .map(|b| (b.account_id.as_str(), b.verification.first_broken_sequence))
        .collect();
    let mut expected = vec![(edited.as_str(), Some(2)), (shortened.as_str(), Some(4))];
    expected.sort();
    assert_eq!(broken, expected);
    for id in [&intact, &also_intact] {
        assert!(verify(&env, id).await.unwrap().ok);
    }
}

async fn rewritten_anchor_heads_no_longer_fold_into_the_anchor_root(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = env.stream_of(1, 4).await;
    env.stream_of(2, 3).await;
    let anchor = env.audit.create_anchor(env.now()).await.unwrap();
    assert!(env.audit.anchor_is_intact(&anchor).await.unwrap());

    // Someone deletes the newest event and lowers its anchored head to match.
    tamper(
        env.store(),
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 4",
        &id,
    )
    .await;
    let rows = stored(env.store(), &id).await;
    let head = rows[2].metadata["chain_hash"].as_str().unwrap().to_owned();
    execute_sql(
        env.store(),
        &format!(
            "UPDATE audit_anchor_heads SET sequence = 3, chain_hash = '{head}' \
              WHERE account_id = '{id}'"
        ),
    )
    .await;

    assert_eq!(
        first_broken(&env, &id).await,
        None,
        "the stream now agrees with the heads"
    );
    assert!(!env.audit.anchor_is_intact(&anchor).await.unwrap());
    let all = env.audit.verify_all().await.unwrap();
    assert!(!all.anchor_intact);
    assert!(!all.ok(), "a rewritten anchor fails verify --all");
}

async fn an_unknown_account_has_nothing_to_verify(db: TestDatabase) {
    let env = Env::new(db).await;
    env.stream_of(1, 2).await;
    let unknown = AccountId::parse("100000000999").unwrap();
    assert_eq!(verify(&env, &unknown).await, None);
}
