//! Issue 13 (security hardening): one regression test per finding the black-box probe made
//! against the HTTP surface, each on both backends.

use std::time::Duration;

use serde_json::json;
use tests::{
    assert_problem, on_both_backends, poll, spawn_app, spawn_app_with, Backend, TestApp,
    AUDITOR_TOKEN, EVENTUALLY, PASSWORD,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JSON: (&str, &str) = ("content-type", "application/json");

/// How long a raw connection waits for the server before the test fails: the server's header
/// and body deadlines are 10 s.
const SERVER_DEADLINE: Duration = Duration::from_secs(30);

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("the app accepts")
}

/// Everything the server sends until it closes the connection (or `SERVER_DEADLINE` passes,
/// which fails the test).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(SERVER_DEADLINE, stream.read_to_end(&mut received))
        .await
        .expect("the server closes the connection in time")
        .ok();
    String::from_utf8_lossy(&received).into_owned()
}

/// Finding 3: the metrics never carry a client-chosen path, and probing unmatched paths is
/// limited like any public route.
async fn unmatched_paths_are_one_metrics_label_and_rate_limited(backend: Backend) {
    let app = spawn_app_with(backend, &[("ACCOUNTD_IP_RATE_LIMIT", "3")]).await;
    let probe = "/v1/password-resets/probe-token-7c1f/";
    let first = app.get(probe, None).await;
    assert_problem(&first, 404, "not_found");
    let metrics = app.get("/metrics", None).await;
    assert!(
        !metrics.text.contains("probe-token-7c1f"),
        "a client's path is no metrics label"
    );
    assert!(
        metrics.text.contains(r#"route="unmatched""#),
        "{}",
        metrics.text
    );

    let mut limited = false;
    for n in 0..5 {
        let answer = app.get(&format!("/v1/no-such-route-{n}"), None).await;
        if answer.status == 429 {
            assert_problem(&answer, 429, "rate_limited");
            limited = true;
            break;
        }
        assert_problem(&answer, 404, "not_found");
    }
    assert!(limited, "unmatched paths count against the per-IP limit");
    app.stop().await;
}
on_both_backends!(unmatched_paths_are_one_metrics_label_and_rate_limited);

/// Finding 4: an oversized or odd request id is replaced, not stored or echoed; a long user
/// agent is stored cut to 256 bytes.
async fn request_ids_and_user_agents_are_bounded_before_they_are_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge_id = "r".repeat(100_000);
    let long_agent = format!("agent/{}", "x".repeat(10_000));
    let body = json!({"login_email": "bounded@example.com", "password": PASSWORD}).to_string();
    let created = app
        .send_raw(
            "POST",
            "/v1/accounts",
            &[
                JSON,
                ("x-request-id", &huge_id),
                ("user-agent", &long_agent),
            ],
            body.into_bytes(),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let echoed = created.header("x-request-id").expect("a request id");
    assert!(echoed.len() <= 128 && echoed != huge_id, "{echoed}");
    let id = created.body["account_id"].as_str().expect("an id");
    let metadata = app.stream_metadata(id).await;
    let registered = &metadata[0].1;
    assert_eq!(registered["request_id"], echoed, "{registered}");
    let agent = registered["user_agent"].as_str().expect("the user agent");
    assert!(
        agent.len() <= 256 && long_agent.starts_with(agent),
        "{agent}"
    );

    let odd = app
        .send_raw(
            "GET",
            "/healthz",
            &[("x-request-id", "a b<script>")],
            Vec::new(),
        )
        .await;
    assert_ne!(odd.header("x-request-id"), Some("a b<script>"));
    let plain = app
        .send_raw(
            "GET",
            "/healthz",
            &[("x-request-id", "req-42.a_b:c")],
            Vec::new(),
        )
        .await;
    assert_eq!(plain.header("x-request-id"), Some("req-42.a_b:c"));
    app.stop().await;
}
on_both_backends!(request_ids_and_user_agents_are_bounded_before_they_are_stored);

/// Finding 5: behind the trusted proxy, the client is the right-most entry (the one our proxy
/// appended), and a value that is not an address falls back to the socket's.
async fn the_proxy_header_is_read_from_the_right_and_never_yields_no_ip(backend: Backend) {
    let app = spawn_app_with(
        backend,
        &[("ACCOUNTD_TRUSTED_PROXY_HEADER", "x-forwarded-for")],
    )
    .await;
    let sign_up = |email: &str, forwarded: &'static str| {
        let body = json!({"login_email": email, "password": PASSWORD}).to_string();
        let app = &app;
        async move {
            let created = app
                .send_raw(
                    "POST",
                    "/v1/accounts",
                    &[JSON, ("x-forwarded-for", forwarded)],
                    body.into_bytes(),
                )
                .await;
            assert_eq!(created.status, 201, "{created:?}");
            let id = created.body["account_id"]
                .as_str()
                .expect("an id")
                .to_owned();
            app.stream_metadata(&id).await[0].1.clone()
        }
    };
    let spoofed = sign_up("spoof@example.com", "6.6.6.6, 203.0.113.9").await;
    assert_eq!(spoofed["ip"], "203.0.113.9", "{spoofed}");
    let garbage = sign_up("garbage@example.com", "not-an-address").await;
    assert_eq!(garbage["ip"], "127.0.0.1", "{garbage}");
    app.stop().await;
}
on_both_backends!(the_proxy_header_is_read_from_the_right_and_never_yields_no_ip);

/// Finding 6: a NUL anywhere in a body string or in the target is a 400 on both stores (it was
/// a 503 on PostgreSQL), and identifiers refuse invisible and control characters.
async fn nul_bytes_and_hidden_characters_are_client_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let bodies = [
        (
            "/v1/sessions",
            json!({"login": "a\u{0}@example.com", "password": PASSWORD}),
        ),
        (
            "/v1/password-resets",
            json!({"login_email": "nul\u{0}@example.com"}),
        ),
        (
            "/v1/account-recovery",
            json!({"method": "server_ip", "ip": "10.0.0.1\u{0}"}),
        ),
        (
            "/v1/accounts",
            json!({"login_email": "x@example.com", "password": "Tq7#vLm2!\u{0}"}),
        ),
    ];
    for (path, body) in bodies {
        let answer = app.post(path, None, body).await;
        assert_problem(&answer, 400, "invalid_request");
    }
    let target = app
        .post(
            "/v1/account-recovery/ab%00cd/confirmation",
            None,
            json!({"mobile": "+8613800138000"}),
        )
        .await;
    assert_problem(&target, 400, "invalid_request");
    for hidden in [
        "zero\u{200B}width",
        "bidi\u{202E}moc",
        "cr\rlf",
        "bom\u{FEFF}x",
    ] {
        let answer = app
            .post(
                "/v1/accounts",
                None,
                json!({"login_email": format!("{hidden}@example.com"), "password": PASSWORD}),
            )
            .await;
        assert_problem(&answer, 400, "invalid_request");
    }
    assert!(
        app.events_of_type("AccountRegistered").await.is_empty(),
        "nothing was stored"
    );
    app.stop().await;
}
on_both_backends!(nul_bytes_and_hidden_characters_are_client_errors);

/// Finding 8: a connection that never finishes its headers is closed; a body that never
/// arrives is a 408; a declared body over the limit is refused before it is sent.
async fn slow_clients_are_cut_off_and_huge_bodies_refused_up_front(backend: Backend) {
    let app = spawn_app(backend).await;

    let mut half_open = connect(&app).await;
    half_open
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: accountd\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut half_open).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    let mut slow_body = connect(&app).await;
    slow_body
        .write_all(
            b"POST /v1/password-resets HTTP/1.1\r\nHost: accountd\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"login",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow_body).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");

    // Nothing of the body is sent: the answer comes from the declared length alone.
    let mut huge = connect(&app).await;
    huge.write_all(
        b"POST /v1/accounts HTTP/1.1\r\nHost: accountd\r\nContent-Type: application/json\r\n\
          Content-Length: 1000000000\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let answer = read_until_closed(&mut huge).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not after a body deadline"
    );
    app.stop().await;
}
on_both_backends!(slow_clients_are_cut_off_and_huge_bodies_refused_up_front);

/// Finding 9: answers are not cacheable; only UTF-8 `application/json` is JSON; the audit
/// routes' framework errors are problem documents.
async fn answers_are_not_cached_and_only_plain_json_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = {
        app.sign_up("cache@example.com", PASSWORD).await;
        app.sign_in("cache@example.com", PASSWORD).await
    };
    for answer in [
        app.get("/v1/me", Some(&token)).await,
        app.get("/nowhere", None).await,
    ] {
        assert_eq!(
            answer.header("cache-control"),
            Some("no-store"),
            "{answer:?}"
        );
    }

    let body = br#"{"login_email": "media@example.com"}"#.to_vec();
    for media_type in [
        "application/json; charset=utf-16",
        "application/vnd.api+json",
        "application/json; boundary=x",
    ] {
        let answer = app
            .send_raw(
                "POST",
                "/v1/password-resets",
                &[("content-type", media_type)],
                body.clone(),
            )
            .await;
        assert_problem(&answer, 415, "unsupported_media_type");
    }
    let utf8 = app
        .send_raw(
            "POST",
            "/v1/password-resets",
            &[("content-type", "application/json; charset=UTF-8")],
            body,
        )
        .await;
    assert_eq!(utf8.status, 202, "{utf8:?}");

    let audit = app
        .send_raw(
            "GET",
            "/internal/v1/audit/accounts/100000000001/state",
            &[("authorization", &format!("Bearer {AUDITOR_TOKEN}"))],
            Vec::new(),
        )
        .await;
    assert_problem(&audit, 400, "invalid_request");
    app.stop().await;
}
on_both_backends!(answers_are_not_cached_and_only_plain_json_is_accepted);

/// Finding 9: the embedded store's files and the outbox are the owner's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(Backend::Embedded).await;
    app.sign_up("private@example.com", PASSWORD).await;
    let outbox = gateway::workers::outbox_path(&app.data_dir);
    poll("the outbox", EVENTUALLY, || async {
        outbox.exists().then_some(())
    })
    .await;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&app.data_dir), 0o700);
    for file in ["accountd.db", "accountd.db-wal", "outbox.ndjson"] {
        let path = app.data_dir.join(file);
        if file.ends_with("-wal") && !path.exists() {
            continue;
        }
        assert_eq!(mode(&path), 0o600, "{file}");
    }
    app.stop().await;
}

/// Finding 10: the OpenAPI document lists the statuses the layers answer on every operation,
/// and documents problems as `application/problem+json`.
async fn the_openapi_document_lists_every_status_and_problems_as_problem_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = app.get("/openapi.json", None).await.body;
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            let responses = operation["responses"].as_object().expect("responses");
            for status in ["400", "408", "413", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            if operation.get("requestBody").is_some() {
                assert!(responses.contains_key("415"), "{method} {path}: no 415");
            }
            if method == "post" {
                for status in ["409", "422"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path}: no {status}"
                    );
                }
            }
            if path.starts_with("/v1/") {
                assert!(responses.contains_key("429"), "{method} {path}: no 429");
            }
            for (status, response) in responses {
                let text = response.to_string();
                if text.contains("#/components/schemas/Problem") {
                    assert!(
                        response["content"]
                            .get("application/problem+json")
                            .is_some()
                            && response["content"].get("application/json").is_none(),
                        "{method} {path} {status}: {response}"
                    );
                }
            }
            operations += 1;
        }
    }
    assert!(operations > 30, "{operations} operations");
    app.stop().await;
}
on_both_backends!(the_openapi_document_lists_every_status_and_problems_as_problem_json);
