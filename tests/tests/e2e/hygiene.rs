//! HTTP hygiene (SPEC §3): problem documents for malformed requests, 415, 413, `x-request-id`
//! on every response, Idempotency-Key on POST commands, and the per-IP limit of public routes.

use serde_json::{json, Value};
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
    let unknown_field = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "account_id", "account_id": "100000000001", "mobile": "13800138000"}),
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
    // Scoped to the caller: another session's request with the same key is its own.
    let other_session = app.sign_in("ada@example.com", PASSWORD).await;
    let other = app
        .post_with(
            "/v1/me/identity-verifications",
            Some(&other_session),
            &key,
            json!({"method": "password"}),
        )
        .await;
    assert_eq!(other.status, 201, "{other:?}");
    assert_ne!(other.body["verification_id"], first.body["verification_id"]);
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
    // Without a configured trusted proxy header, a forwarded-for header changes nothing.
    let spoofed = app
        .send_raw(
            "GET",
            path,
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-real-ip", "198.51.100.8"),
            ],
            Vec::new(),
        )
        .await;
    assert_problem(&spoofed, 429, "rate_limited");

    // The limit is per route.
    let other = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(other.status, 202, "{other:?}");
    // Session routes are not public routes: no per-IP limit.
    for _ in 0..7 {
        assert_problem(&app.get("/v1/me", None).await, 401, "unauthenticated");
    }
    app.stop().await;
}
on_both_backends!(a_public_route_answers_429_rate_limited_beyond_the_per_ip_limit);

async fn a_method_a_route_does_not_take_answers_405_with_a_problem_document(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        ("GET", "/v1/accounts"),
        ("PUT", "/v1/sessions"),
        ("DELETE", "/v1/me"),
        ("GET", "/v1/me/password"),
    ] {
        let answer = app.send(method, path, None, None).await;
        has_request_id(&answer);
        assert_eq!(answer.status, 405, "{method} {path}: {answer:?}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json"),
            "errors are problem documents (SPEC §3): {method} {path} answered {answer:?}"
        );
        assert_eq!(answer.body["status"], 405, "{answer:?}");
        assert!(
            answer.code().is_some_and(|c| !c.is_empty()),
            "a machine code: {answer:?}"
        );
    }
    app.stop().await;
}
on_both_backends!(a_method_a_route_does_not_take_answers_405_with_a_problem_document);

/// Every route of SPEC §3, as (method, path template).
const SPEC_ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/sms-codes"),
    ("post", "/v1/accounts"),
    ("post", "/v1/sessions"),
    ("delete", "/v1/sessions/current"),
    ("post", "/v1/account-recovery"),
    ("post", "/v1/account-recovery/{recovery_id}/confirmation"),
    ("post", "/v1/password-resets"),
    ("get", "/v1/password-resets/{token}"),
    ("post", "/v1/password-resets/{token}/verification-codes"),
    ("post", "/v1/password-resets/{token}/completion"),
    ("get", "/v1/me"),
    ("post", "/v1/me/identity-verifications"),
    ("post", "/v1/me/identity-verifications/{id}"),
    ("put", "/v1/me/contact-mobile"),
    ("put", "/v1/me/contact-email"),
    ("post", "/v1/me/contact-mobile/verification"),
    ("post", "/v1/me/contact-email/verification"),
    ("put", "/v1/me/recovery-mobile"),
    ("put", "/v1/me/recovery-email"),
    ("post", "/v1/me/recovery-mobile/confirmation"),
    ("post", "/v1/me/recovery-email/confirmation"),
    ("put", "/v1/me/login-email"),
    ("post", "/v1/me/login-email/confirmation"),
    ("put", "/v1/me/password"),
    ("get", "/v1/me/history"),
    ("post", "/internal/v1/accounts/{id}/servers"),
    ("delete", "/internal/v1/accounts/{id}/servers/{instance_id}"),
    ("get", "/internal/v1/accounts/{id}"),
    ("get", "/internal/v1/lookup/mobile/{e164}"),
    ("get", "/internal/v1/lookup/email/{email}"),
    ("get", "/internal/v1/lookup/server-ip/{ip}"),
    ("post", "/internal/v1/accounts/{id}/notifications"),
    ("get", "/internal/v1/audit/accounts/{id}/events"),
    ("get", "/internal/v1/audit/accounts/{id}/state"),
    ("get", "/internal/v1/audit/accounts/{id}/verification"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

/// The object schemas `schema` stands for, following `$ref`s and `oneOf`/`anyOf` members.
fn object_schemas<'a>(
    document: &'a Value,
    schema: &'a Value,
    found: &mut Vec<(String, &'a Value)>,
) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        object_schemas(document, &document["components"]["schemas"][name], found);
    } else if let Some(members) = schema["oneOf"]
        .as_array()
        .or_else(|| schema["anyOf"].as_array())
    {
        for member in members {
            object_schemas(document, member, found);
        }
    } else if schema["properties"].is_object() {
        found.push((
            schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default(),
            schema,
        ));
    }
}

async fn the_openapi_document_lists_every_route_and_closes_every_request_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let answer = app.get("/openapi.json", None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let document = &answer.body;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1: {}",
        document["openapi"]
    );
    for (method, path) in SPEC_ROUTES {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    let mut open = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            else {
                continue;
            };
            let mut objects = Vec::new();
            object_schemas(document, schema, &mut objects);
            assert!(
                !objects.is_empty(),
                "{method} {path}: a body schema with properties"
            );
            for (properties, object) in objects {
                if object["additionalProperties"] != false {
                    open.push(format!("{method} {path} ({properties})"));
                }
            }
        }
    }
    assert!(
        open.is_empty(),
        "request bodies without additionalProperties: false: {open:#?}"
    );
    app.stop().await;
}
on_both_backends!(the_openapi_document_lists_every_route_and_closes_every_request_body);

async fn behind_a_trusted_proxy_the_forwarded_client_ip_is_limited_and_recorded_with_the_request(
    backend: Backend,
) {
    let app = spawn_app_with(
        backend,
        &[
            ("ACCOUNTD_TRUSTED_PROXY_HEADER", "x-forwarded-for"),
            ("ACCOUNTD_IP_RATE_LIMIT", "2"),
        ],
    )
    .await;
    let body = json!({"login_email": "ada@example.com", "password": PASSWORD});
    let created = app
        .send_raw(
            "POST",
            "/v1/accounts",
            &[
                JSON,
                // The client wrote the left entry; our proxy appended the right-most one.
                ("x-forwarded-for", "10.0.0.1, 198.51.100.1"),
                ("x-request-id", "e2e-meta-1"),
                ("user-agent", "accountd-e2e/1.0"),
            ],
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["account_id"].as_str().expect("an id");
    let metadata = app.stream_metadata(id).await;
    let (kind, registered) = &metadata[0];
    assert_eq!(kind, "AccountRegistered");
    assert_eq!(registered["request_id"], "e2e-meta-1", "{registered}");
    assert_eq!(registered["ip"], "198.51.100.1", "{registered}");
    assert_eq!(registered["user_agent"], "accountd-e2e/1.0", "{registered}");
    assert!(
        registered["event_id"]
            .as_str()
            .is_some_and(|e| uuid::Uuid::parse_str(e).is_ok()),
        "{registered}"
    );
    assert!(registered["occurred_at"].is_string(), "{registered}");
    let chain_hash = registered["chain_hash"].as_str().unwrap_or_default();
    assert!(
        chain_hash.len() == 64
            && chain_hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "a lowercase hex SHA-256: {registered}"
    );

    // The limit counts the forwarded client, not the proxy's socket.
    let path = "/v1/password-resets/unknown-token";
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    for _ in 0..2 {
        let answer = app
            .send_raw("GET", path, &from("198.51.100.2"), Vec::new())
            .await;
        assert_problem(&answer, 410, "reset_token_invalid");
    }
    let mut refused = false;
    for _ in 0..3 {
        let answer = app
            .send_raw("GET", path, &from("198.51.100.2"), Vec::new())
            .await;
        if answer.status == 429 {
            assert_problem(&answer, 429, "rate_limited");
            refused = true;
            break;
        }
    }
    assert!(refused, "the forwarded client is limited");
    let other_client = app
        .send_raw("GET", path, &from("198.51.100.3"), Vec::new())
        .await;
    assert_problem(&other_client, 410, "reset_token_invalid");
    app.stop().await;
}
on_both_backends!(
    behind_a_trusted_proxy_the_forwarded_client_ip_is_limited_and_recorded_with_the_request
);
