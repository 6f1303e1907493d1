//! The contract of `NotifyStore`, one body run on PostgreSQL and on SQLite: the planner's
//! compare-and-set commit, rows kept by their key, claims under leases fenced by the attempt
//! count, heartbeats, outcomes, requests kept until resolved, and dead letters.

mod support_bus;

use domain::stored::Checkpoint;
use domain::Channel;
use projections::notifier::plan::{Contacts, Planned, Template};
use projections::notifier::store::{Attempt, DeadPlan, PendingRequest, PlannedBatch, State};
use serde_json::json;
use testkit::TestDatabase;

const PLANNER: &str = "contract";

fn planned(recipient: &str) -> Planned {
    Planned {
        channel: Channel::Email,
        recipient: recipient.to_owned(),
        template: Template::SecurityNotice,
        params: json!({"notice": "password_changed", "account_id": "100000000001"}),
    }
}

fn at(position: i64) -> Checkpoint {
    Checkpoint {
        tx_id: position,
        position,
    }
}

async fn the_contract(db: TestDatabase) {
    let read = projections::ReadStore::open(&db.url).await.unwrap();
    let store = read.notifier();
    assert_eq!(
        store.checkpoint(PLANNER).await.unwrap(),
        Checkpoint::default()
    );

    // A batch: folds, two rows, a dead letter, a resolved request.
    let fold = Contacts {
        last_sequence: 3,
        mobile: Some(("+41791234567".into(), true)),
        email: Some(("ann@example.com".into(), false)),
    };
    let request = PendingRequest {
        source_id: "request:r1".into(),
        account_id: "100000000001".into(),
        after_sequence: Some(3),
        params: json!({"kind": "event", "subject": "S", "body": "B"}),
    };
    store.record_request(&request).await.unwrap();
    store.record_request(&request).await.unwrap();
    assert_eq!(
        store.pending_requests(10).await.unwrap(),
        vec![request.clone()]
    );
    let batch = PlannedBatch {
        from: Checkpoint::default(),
        to: at(5),
        contacts: vec![("100000000001".into(), fold.clone())],
        deliveries: vec![
            ("100000000001:3".into(), planned("ann@example.com")),
            ("request:r1".into(), planned("bob@example.com")),
        ],
        dead: vec![DeadPlan {
            source_id: "request:r2".into(),
            template: "subscribed".into(),
            reason: "unknown account".into(),
        }],
        resolved_requests: vec!["request:r1".into()],
        now_ms: 1_000,
    };
    assert!(store.commit_plan(PLANNER, &batch).await.unwrap());
    assert_eq!(store.checkpoint(PLANNER).await.unwrap(), at(5));
    // The same batch again: the checkpoint moved, nothing is written.
    assert!(!store.commit_plan(PLANNER, &batch).await.unwrap());
    let folds = store
        .contacts(&["100000000001".into(), "100000000002".into()])
        .await
        .unwrap();
    assert_eq!(folds.len(), 1);
    assert_eq!(folds["100000000001"], fold);
    assert!(store.pending_requests(10).await.unwrap().is_empty());
    // A request redelivered after it was resolved is not kept again.
    store.record_request(&request).await.unwrap();
    assert!(store.pending_requests(10).await.unwrap().is_empty());

    // A key planned again is kept as it is.
    let again = PlannedBatch {
        from: at(5),
        to: at(6),
        deliveries: vec![("100000000001:3".into(), planned("ann@example.com"))],
        now_ms: 9_000,
        ..PlannedBatch::default()
    };
    assert!(store.commit_plan(PLANNER, &again).await.unwrap());
    let rows = store.rows_of("100000000001:3").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].state, rows[0].next_attempt_ms),
        (State::Pending, 1_000)
    );

    // Claims: due rows, once; again only once the lease ran out, fenced by the attempt count.
    assert!(store.claim_due(999, 2_000, 10).await.unwrap().is_empty());
    let first = store.claim_due(1_000, 2_000, 10).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first
        .iter()
        .all(|r| r.state == State::Sending && r.attempts == 1));
    assert!(store.claim_due(1_500, 2_500, 10).await.unwrap().is_empty());
    // The heartbeat keeps one row; the other's lease runs out and another worker claims it.
    let (kept, lapsed) = (&first[0], &first[1]);
    store
        .extend_leases(std::slice::from_ref(kept), 4_000)
        .await
        .unwrap();
    let second = store.claim_due(2_001, 3_000, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].source_id, lapsed.source_id);
    assert_eq!(second[0].attempts, 2);
    assert_eq!(
        second[0].delivery_id(),
        lapsed.delivery_id(),
        "the same id on every attempt"
    );
    // The first worker's late outcome changes nothing; the second's counts.
    store
        .finish(&[(lapsed.clone(), Attempt::Sent)])
        .await
        .unwrap();
    let row = &store.rows_of(&lapsed.source_id).await.unwrap()[0];
    assert_eq!((row.state, row.attempts), (State::Sending, 2));
    store
        .finish(&[
            (second[0].clone(), Attempt::Sent),
            (
                kept.clone(),
                Attempt::Retry {
                    at_ms: 7_000,
                    error: "SMS gateway answered 503".into(),
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.rows_of(&lapsed.source_id).await.unwrap()[0].state,
        State::Sent
    );
    let retried = &store.rows_of(&kept.source_id).await.unwrap()[0];
    assert_eq!(
        (
            retried.state,
            retried.next_attempt_ms,
            retried.last_error.as_deref()
        ),
        (State::Pending, 7_000, Some("SMS gateway answered 503"))
    );
    let third = store.claim_due(7_000, 8_000, 10).await.unwrap();
    assert_eq!(third.len(), 1);
    store
        .finish(&[(
            third[0].clone(),
            Attempt::Dead {
                error: "refused".into(),
            },
        )])
        .await
        .unwrap();

    // Dead letters: the one that could not be planned, the one that could not be sent.
    store
        .record_dead(
            &DeadPlan {
                source_id: "request:r3".into(),
                template: "subscribed".into(),
                reason: "malformed request".into(),
            },
            10_000,
        )
        .await
        .unwrap();
    let dead = store.dead_letters().await.unwrap();
    let reasons: Vec<_> = dead
        .iter()
        .map(|d| {
            (
                d.source_id.as_str(),
                d.channel.as_str(),
                d.last_error.as_deref(),
            )
        })
        .collect();
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(reasons.contains(&("request:r2", "none", Some("unknown account"))));
    assert!(reasons.contains(&("request:r3", "none", Some("malformed request"))));
    assert!(reasons.contains(&(kept.source_id.as_str(), "email", Some("refused"))));
    let counts = store.counts().await.unwrap();
    assert_eq!(counts, vec![("dead".into(), 3), ("sent".into(), 1)]);

    // A reset moves the planner back and forgets the folds; the rows stay.
    store.reset(PLANNER).await.unwrap();
    assert_eq!(
        store.checkpoint(PLANNER).await.unwrap(),
        Checkpoint::default()
    );
    assert!(store
        .contacts(&["100000000001".into()])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.counts().await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_notify_store_contract_holds_on_postgres() {
    the_contract(TestDatabase::postgres().await).await;
}

#[tokio::test]
async fn the_notify_store_contract_holds_on_sqlite() {
    the_contract(TestDatabase::sqlite().await).await;
}
