//! Idempotency-Key records (SPEC §3, issues 12 and 13): a retry gets the recorded response, a
//! request that died mid-flight frees its key once its lease lapses, and nothing secret is
//! stored in clear. Time is the service's injected clock.

use std::sync::Arc;
use std::time::Duration;

use commands::idempotency::{Begin, IdempotentRequest};
use commands::CommandService;
use testkit::prelude::*;

on_both_backends!(
    a_retry_gets_the_recorded_response_and_another_body_is_refused,
    a_key_whose_request_died_mid_flight_is_usable_again_after_its_lease,
    a_server_failure_is_forgotten_so_a_retry_runs,
    the_table_holds_no_token_body_or_response_in_clear,
);

const LEASE: Duration = Duration::from_secs(15);
const TOKEN_PATH: &str = "/v1/password-resets/rT0k3n-sEcReT-abcdefghijklmnop/completion";
const BODY: &[u8] = br#"{"login":"a@example.com","password":"Hunter2-Secret!"}"#;
const RESPONSE: &[u8] = br#"{"token":"bearer-SECRET-0123456789","account_id":"100000000001"}"#;

fn request<'a>(path: &'a str, body: &'a [u8]) -> IdempotentRequest<'a> {
    IdempotentRequest {
        caller: "ip:203.0.113.9",
        method: "POST",
        path,
        key: "key-1",
        body,
    }
}

fn setup(db: &TestDatabase) -> (CommandService, Arc<TestClock>) {
    let clock = Arc::new(TestClock::new(t0()));
    (service_with_clock(&db.store, clock.clone()), clock)
}

async fn begin(service: &CommandService, path: &str, body: &[u8]) -> Begin {
    (service.idempotency())
        .begin(&request(path, body), LEASE)
        .await
        .expect("begin")
}

async fn a_retry_gets_the_recorded_response_and_another_body_is_refused(db: TestDatabase) {
    let (service, clock) = setup(&db);
    let Begin::Run(lease) = begin(&service, "/v1/sessions", BODY).await else {
        panic!("a new key runs");
    };
    assert!(matches!(
        begin(&service, "/v1/sessions", BODY).await,
        Begin::InFlight
    ));
    (service.idempotency())
        .finish(&lease, 201, "application/json", RESPONSE)
        .await
        .unwrap();
    // Long after the lease: a recorded outcome is replayed, never re-run.
    clock.advance(chrono::Duration::hours(1));
    let Begin::Replay(replayed) = begin(&service, "/v1/sessions", BODY).await else {
        panic!("a retry gets the recorded response");
    };
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.content_type, "application/json");
    assert_eq!(replayed.body, RESPONSE);
    assert!(matches!(
        begin(&service, "/v1/sessions", b"{}").await,
        Begin::OtherBody
    ));
    // The key is scoped to its path: elsewhere it is new.
    assert!(matches!(
        begin(&service, "/v1/accounts", BODY).await,
        Begin::Run(_)
    ));
    // After 24 hours the key is forgotten.
    clock.advance(chrono::Duration::hours(24));
    assert!(matches!(
        begin(&service, "/v1/sessions", b"{}").await,
        Begin::Run(_)
    ));
}

async fn a_key_whose_request_died_mid_flight_is_usable_again_after_its_lease(db: TestDatabase) {
    let (service, clock) = setup(&db);
    // The first request begins and then dies: it never finishes nor forgets its record.
    let Begin::Run(dead) = begin(&service, "/v1/sessions", BODY).await else {
        panic!("a new key runs");
    };
    clock.advance(chrono::Duration::seconds(14));
    assert!(
        matches!(begin(&service, "/v1/sessions", BODY).await, Begin::InFlight),
        "within its lease the first request may still be running"
    );
    clock.advance(chrono::Duration::seconds(2));
    assert!(
        matches!(
            begin(&service, "/v1/sessions", b"{}").await,
            Begin::OtherBody
        ),
        "a lapsed lease is not a licence to change the body"
    );
    let Begin::Run(retry) = begin(&service, "/v1/sessions", BODY).await else {
        panic!("after the lease a retry with the same body runs again");
    };
    // Only one retry takes it over; the dead request can no longer record its outcome.
    assert!(matches!(
        begin(&service, "/v1/sessions", BODY).await,
        Begin::InFlight
    ));
    (service.idempotency())
        .finish(&dead, 500, "application/json", b"{}")
        .await
        .unwrap();
    (service.idempotency())
        .finish(&retry, 201, "application/json", RESPONSE)
        .await
        .unwrap();
    let Begin::Replay(replayed) = begin(&service, "/v1/sessions", BODY).await else {
        panic!("the retry's outcome is recorded");
    };
    assert_eq!((replayed.status, replayed.body.as_slice()), (201, RESPONSE));
}

async fn a_server_failure_is_forgotten_so_a_retry_runs(db: TestDatabase) {
    let (service, _) = setup(&db);
    let Begin::Run(lease) = begin(&service, "/v1/sessions", BODY).await else {
        panic!("a new key runs");
    };
    service.idempotency().forget(&lease).await.unwrap();
    assert!(matches!(
        begin(&service, "/v1/sessions", BODY).await,
        Begin::Run(_)
    ));
}

async fn the_table_holds_no_token_body_or_response_in_clear(db: TestDatabase) {
    let (service, _) = setup(&db);
    for path in [TOKEN_PATH, "/v1/sessions"] {
        let Begin::Run(lease) = begin(&service, path, BODY).await else {
            panic!("a new key runs");
        };
        (service.idempotency())
            .finish(&lease, 201, "application/json", RESPONSE)
            .await
            .unwrap();
    }
    const SQL: &str = "SELECT scope_digest || request_digest || coalesce(content_type, '') \
                       || coalesce(body_key_id, '') || coalesce(sealed_body, '') \
                       FROM idempotency_records";
    let rows = db.raw.texts(SQL, SQL, &[]).await;
    assert_eq!(rows.len(), 2);
    let stored = format!("{rows:?}");
    for secret in [
        "rT0k3n-sEcReT",
        "password-resets",
        "Hunter2-Secret!",
        "bearer-SECRET",
        "a@example.com",
        "key-1",
    ] {
        assert!(
            !stored.contains(secret),
            "{secret} is stored in clear: {stored}"
        );
    }
    // The bodies are sealed, yet replayed verbatim.
    let Begin::Replay(replayed) = begin(&service, TOKEN_PATH, BODY).await else {
        panic!("recorded");
    };
    assert_eq!(replayed.body, RESPONSE);
}
