//! The per-account hash chain written by the executor, checked against tampering done directly
//! in the database (DESIGN §3.5): verification over the stored rows reports the first broken
//! sequence for an edit, a deletion, a reordering and a forged insertion.

use commands::{CommandContext, Store};
use domain::account::RecoveryMethod;
use domain::{Account, AccountCommand};
use serde_json::{json, Value};
use testkit::prelude::*;
use testkit::TestDatabase;

on_both_backends!(
    an_untouched_stream_verifies_to_its_last_event,
    an_edited_payload_is_reported_at_that_event,
    edited_metadata_is_reported_at_that_event,
    a_deleted_middle_event_is_reported_at_its_sequence,
    two_swapped_events_are_reported_at_the_first_of_them,
    a_forged_event_inserted_with_copied_metadata_is_reported_at_its_sequence,
);

/// A stream of five events of four types: registration, server 1, a recovery request,
/// server 2, release of server 1.
async fn five_event_stream(db: &TestDatabase) -> String {
    let executor = executor(&db.store);
    let id = register_by_mobile(&executor, 1).await;
    let commands = [
        assign_server(1),
        AccountCommand::RecordRecoveryRequest {
            method: RecoveryMethod::Mobile,
            recovery_id: Some("recovery-1".to_owned()),
        },
        assign_server(2),
        AccountCommand::ReleaseServerIp {
            instance_id: instance_id(1),
        },
    ];
    for command in commands {
        executor
            .execute::<Account>(id.as_str(), command, &CommandContext::system())
            .await
            .unwrap();
    }
    let rows = stream_rows(&db.store, id.as_str()).await;
    assert_eq!(rows.len(), 5);
    assert_eq!(
        verify_rows(&rows).first_broken_sequence,
        None,
        "the stream verifies before it is tampered with"
    );
    id.as_str().to_owned()
}

async fn first_broken(db: &TestDatabase, id: &str) -> Option<u64> {
    verify_rows(&stream_rows(&db.store, id).await).first_broken_sequence
}

async fn an_untouched_stream_verifies_to_its_last_event(db: TestDatabase) {
    let id = five_event_stream(&db).await;
    let rows = stream_rows(&db.store, &id).await;
    let verification = verify_rows(&rows);
    assert_eq!(verification.first_broken_sequence, None);
    assert_eq!(verification.events_checked, 5);
    assert_eq!(verification.head, rows[4].metadata["chain_hash"]);
}

async fn an_edited_payload_is_reported_at_that_event(db: TestDatabase) {
    let id = five_event_stream(&db).await;
    let rows = stream_rows(&db.store, &id).await;
    let mut payload = rows[3].payload.clone();
    payload["public_ip"] = json!("192.0.2.66");

    set_row(
        &db.store,
        &id,
        4,
        &rows[3].event_type,
        &payload,
        &rows[3].metadata,
    )
    .await;

    assert_eq!(first_broken(&db, &id).await, Some(4));
}

async fn edited_metadata_is_reported_at_that_event(db: TestDatabase) {
    let id = five_event_stream(&db).await;
    let rows = stream_rows(&db.store, &id).await;
    let mut metadata = rows[1].metadata.clone();
    metadata["actor"] = json!("account:100000000042");

    set_row(
        &db.store,
        &id,
        2,
        &rows[1].event_type,
        &rows[1].payload,
        &metadata,
    )
    .await;

    assert_eq!(first_broken(&db, &id).await, Some(2));
}

async fn a_deleted_middle_event_is_reported_at_its_sequence(db: TestDatabase) {
    let id = five_event_stream(&db).await;

    run(
        &db.store,
        "DELETE FROM events WHERE aggregate_id = $1 AND sequence = 3",
        "DELETE FROM events WHERE aggregate_id = ?1 AND sequence = 3",
        &id,
    )
    .await;

    assert_eq!(stream_rows(&db.store, &id).await.len(), 4);
    assert_eq!(first_broken(&db, &id).await, Some(3));
}

async fn two_swapped_events_are_reported_at_the_first_of_them(db: TestDatabase) {
    let id = five_event_stream(&db).await;
    let rows = stream_rows(&db.store, &id).await;
    assert_ne!(rows[1].event_type, rows[2].event_type);

    // Each keeps its sequence number but takes the other's type, payload and metadata.
    set_row(
        &db.store,
        &id,
        2,
        &rows[2].event_type,
        &rows[2].payload,
        &rows[2].metadata,
    )
    .await;
    set_row(
        &db.store,
        &id,
        3,
        &rows[1].event_type,
        &rows[1].payload,
        &rows[1].metadata,
    )
    .await;

    assert_eq!(first_broken(&db, &id).await, Some(2));
}

async fn a_forged_event_inserted_with_copied_metadata_is_reported_at_its_sequence(
    db: TestDatabase,
) {
    let id = five_event_stream(&db).await;
    let rows = stream_rows(&db.store, &id).await;

    // Make room at sequence 2 (through a detour, as the key is checked row by row), then
    // insert a forged server assignment carrying the real event 2's metadata and chain hash.
    run(
        &db.store,
        "UPDATE events SET sequence = sequence + 1000 WHERE aggregate_id = $1 AND sequence >= 2",
        "UPDATE events SET sequence = sequence + 1000 WHERE aggregate_id = ?1 AND sequence >= 2",
        &id,
    )
    .await;
    run(
        &db.store,
        "UPDATE events SET sequence = sequence - 999 WHERE aggregate_id = $1 AND sequence > 1000",
        "UPDATE events SET sequence = sequence - 999 WHERE aggregate_id = ?1 AND sequence > 1000",
        &id,
    )
    .await;
    let forged = json!({
        "instance_id": "i-forged",
        "public_ip": "192.0.2.66",
        "assigned_at": rows[1].payload["assigned_at"].clone(),
    });
    insert_row(
        &db.store,
        &id,
        2,
        "ServerIpAssigned",
        &forged,
        &rows[1].metadata,
    )
    .await;

    let tampered = stream_rows(&db.store, &id).await;
    assert_eq!(
        tampered.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    assert_eq!(first_broken(&db, &id).await, Some(2));
}

/// Runs a statement (one text per dialect) with the stream id as its only parameter.
async fn run(store: &Store, postgres: &str, sqlite: &str, id: &str) {
    Raw::of(store)
        .execute(postgres, sqlite, &[Arg::Text(id)])
        .await;
}

/// Overwrites the type, payload and metadata of event `sequence` of stream `id`.
async fn set_row(
    store: &Store,
    id: &str,
    sequence: i64,
    event_type: &str,
    payload: &Value,
    metadata: &Value,
) {
    let (payload, metadata) = (payload.to_string(), metadata.to_string());
    let affected = Raw::of(store)
        .execute(
            "UPDATE events SET event_type = $1, payload = $2::text::json, \
                               metadata = $3::text::json \
             WHERE aggregate_id = $4 AND sequence = $5",
            "UPDATE events SET event_type = ?1, payload = ?2, metadata = ?3 \
             WHERE aggregate_id = ?4 AND sequence = ?5",
            &[
                Arg::Text(event_type),
                Arg::Text(&payload),
                Arg::Text(&metadata),
                Arg::Text(id),
                Arg::Int(sequence),
            ],
        )
        .await;
    assert_eq!(affected, 1);
}

/// Inserts a hand-made event row.
async fn insert_row(
    store: &Store,
    id: &str,
    sequence: i64,
    event_type: &str,
    payload: &Value,
    metadata: &Value,
) {
    let (payload, metadata) = (payload.to_string(), metadata.to_string());
    Raw::of(store)
        .execute(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata) \
             VALUES ('Account', $1, $2, $3, '1', $4::text::json, $5::text::json)",
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata) \
             VALUES ('Account', ?1, ?2, ?3, '1', ?4, ?5)",
            &[
                Arg::Text(id),
                Arg::Int(sequence),
                Arg::Text(event_type),
                Arg::Text(&payload),
                Arg::Text(&metadata),
            ],
        )
        .await;
}
