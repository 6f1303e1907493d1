//! HTTP hygiene (SPEC §3): problem documents for malformed requests, 415, 413, `x-request-id`
//! on every response, Idempotency-Key on POST commands, and the per-IP limit of public routes.

use serde_json::json;
use tests::{
    assert_problem, on_both_backends, spawn_app, spawn_app_with, Answer, Backend, PASSWORD,
};

const JSON: (&str, &str) = ("content-type", "application/json");

fn has_request_id(answer: &Answer) {
    assert!(
        answer
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty()),
        "every response carries x-request-id: {answer:?}"
    );
}

async fn malformed_requests_get_problem_documents_and_every_response_a_request_id(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    let plain = app
        .send_raw(
            "POST",
            "/v1/accounts",
            &[("content-type", "text/plain")],
            b"hello".to_vec(),
        )
        .await;
    assert_problem(&plain, 415, "unsupported_media_type");
    let none = app
        .send_raw(
            "POST",
            "/v1/password-resets",
            &[],
            br#"{"login_email": "a@example.com"}"#.to_vec(),
        )
        .await;
    assert_problem(&none, 415, "unsupported_media_type");

    let malformed_bodies: [&[u8]; 4] = [b"{\"login_email\": ", b"not json", b"[1, 2]", b""];
    for body in malformed_bodies {
        let malformed = app
            .send_raw("POST", "/v1/accounts", &[JSON], body.to_vec())
            .await;
        assert_problem(&malformed, 400, "invalid_request");
    }
    let unknown_field = app
        .post(
            "/v1/accounts",
            None,
            json!({"login_email": "ada@example.com", "password": PASSWORD, "is_admin": true}),
        )
        .await;
    assert_problem(&unknown_field, 400, "invalid_request");
    let unknown_field = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "ada@example.com", "extra": 1}),
        )
        .await;
    assert_problem(&unknown_field, 400, "invalid_request");
    let wrong_type = app
        .post(
            "/v1/sms-codes",
            None,
            json!({"mobile": 13800138000_u64, "purpose": "signup"}),
        )
        .await;
    assert_problem(&wrong_type, 400, "invalid_request");
    let bad_purpose = app
        .post(
            "/v1/sms-codes",
            None,
            json!({"mobile": "13800138000", "purpose": "reset"}),
        )
        .await;
    assert_problem(&bad_purpose, 400, "invalid_request");

    let padding = "x".repeat(65 * 1024);
    let huge = format!(r#"{{"login_email": "ada@example.com", "password": "{padding}"}}"#);
    let too_large = app
        .send_raw("POST", "/v1/accounts", &[JSON], huge.into_bytes())
        .await;
    assert_problem(&too_large, 413, "payload_too_large");
    assert_eq!(
        app.events_of_type("AccountRegistered").await.len(),
        0,
        "nothing was recorded"
    );

    assert_problem(&app.get("/v1/me", None).await, 401, "unauthenticated");
    assert_problem(
        &app.get("/v1/me", Some("made-up-token")).await,
        401,
        "unauthenticated",
    );
    assert_problem(&app.get("/v1/no-such-route", None).await, 404, "not_found");

    for answer in [&plain, &none, &unknown_field, &too_large, &wrong_type] {
        has_request_id(answer);
    }
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200);
    has_request_id(&health);
    let first = app.get("/v1/me", None).await;
    let second = app.get("/v1/me", None).await;
    has_request_id(&first);
    assert_ne!(
        first.header("x-request-id"),
        second.header("x-request-id"),
        "a fresh id per request"
    );

    let echoed = app
        .post_with(
            "/v1/password-resets",
            None,
            &[("x-request-id", "e2e-request-0001")],
            json!({"login_email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(echoed.status, 202, "{echoed:?}");
    assert_eq!(echoed.header("x-request-id"), Some("e2e-request-0001"));
    let echoed_error = app
        .send_raw(
            "POST",
            "/v1/accounts",
            &[JSON, ("x-request-id", "e2e-request-0002")],
            b"{".to_vec(),
        )
        .await;
    assert_problem(&echoed_error, 400, "invalid_request");
    assert_eq!(
        echoed_error.header("x-request-id"),
        Some("e2e-request-0002")
    );
    app.stop().await;
}
on_both_backends!(malformed_requests_get_problem_documents_and_every_response_a_request_id);

async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = [("idempotency-key", "e2e-key-1")];
    let body = json!({"login_email": "ada@example.com", "password": PASSWORD});

    let first = app
        .post_with("/v1/accounts", None, &key, body.clone())
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let replay = app
        .post_with("/v1/accounts", None, &key, body.clone())
        .await;
    assert_eq!(
        (replay.status, &replay.body),
        (first.status, &first.body),
        "the first response, replayed"
    );
    assert_eq!(replay.header("content-type"), first.header("content-type"));
    has_request_id(&replay);
    assert_eq!(
        app.events_of_type("AccountRegistered").await.len(),
        1,
        "nothing recorded twice"
    );

    let other_body = json!({"login_email": "bob@example.com", "password": PASSWORD});
    let reused = app
        .post_with("/v1/accounts", None, &key, other_body.clone())
        .await;
    assert_problem(&reused, 422, "idempotency_key_reused");
    assert_eq!(app.events_of_type("AccountRegistered").await.len(), 1);

    // Without the key the same body is a new request: the email is taken.
    assert_problem(&app.post("/v1/accounts", None, body).await, 409, "conflict");

    // A session-scoped command: one step-up verification, replayed.
    let token = app.sign_in("ada@example.com", PASSWORD).await;
    let start = json!({"method": "password"});
    let key = [("idempotency-key", "e2e-key-2")];
    let first = app
        .post_with(
            "/v1/me/identity-verifications",
            Some(&token),
            &key,
            start.clone(),
        )
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let replay = app
        .post_with("/v1/me/identity-verifications", Some(&token), &key, start)
        .await;
    assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    app.stop().await;
}
on_both_backends!(an_idempotency_key_replays_the_first_response_and_refuses_another_body);

async fn a_public_route_answers_429_rate_limited_beyond_the_per_ip_limit(backend: Backend) {
    let app = spawn_app_with(backend, &[("ACCOUNTD_IP_RATE_LIMIT", "5")]).await;
    let path = "/v1/password-resets/unknown-token";
    // Fixed one-minute windows: the first five always pass; of the next six, at least one is
    // refused even when a window boundary falls among them.
    for _ in 0..5 {
        assert_problem(&app.get(path, None).await, 410, "reset_token_invalid");
    }
    let mut refused = None;
    for _ in 0..6 {
        let answer = app.get(path, None).await;
        if answer.status == 429 {
            refused = Some(answer);
            break;
        }
        assert_problem(&answer, 410, "reset_token_invalid");
    }
    let refused = refused.expect("the per-IP limit refuses a request beyond five a minute");
    assert_problem(&refused, 429, "rate_limited");
    assert!(
        refused.retry_after().is_some_and(|s| s <= 60),
        "{refused:?}"
    );
    has_request_id(&refused);

    // The limit is per route.
    let other = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(other.status, 202, "{other:?}");
    app.stop().await;
}
on_both_backends!(a_public_route_answers_429_rate_limited_beyond_the_per_ip_limit);
