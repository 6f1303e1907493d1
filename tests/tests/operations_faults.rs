//! Operating under faults (issue 12), against servers of the test's own that it stops and
//! starts again (`tests::procs`): `/readyz` answers within a second whatever is down, turns 503
//! within 2 s of NATS or PostgreSQL stopping and 200 again after they return; during a
//! PostgreSQL outage requests answer 503 `unavailable` with `Retry-After` in under a second, and
//! the service recovers without a restart. Commands taken while NATS is down are delivered
//! once it is back.

use std::time::{Duration, Instant};

use serde_json::json;
use tests::procs::{PrivateNats, PrivatePostgres};
use tests::{assert_problem, on_both_backends, poll, spawn_app_with, Answer, Backend, TestApp};

/// How soon `/readyz` must notice a dependency gone.
const NOTICED_WITHIN: Duration = Duration::from_secs(2);
/// The longest any answer may take while a dependency is down.
const FAST: Duration = Duration::from_secs(1);
/// How long a restarted server and the client's reconnection may take.
const BACK_WITHIN: Duration = Duration::from_secs(30);

/// Sends `method path`, asserting that the answer comes within [`FAST`].
async fn timed(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> Answer {
    let started = Instant::now();
    let body = (method == "POST").then(|| json!({}));
    let answer = app.send(method, path, token, body).await;
    let took = started.elapsed();
    assert!(
        took < FAST,
        "{method} {path} took {took:?} (answer {answer:?})"
    );
    answer
}

/// Polls `/readyz` until it answers `status`, every answer within [`FAST`]; returns the last
/// answer and how long it took to get there.
async fn readiness_becomes(app: &TestApp, status: u16, within: Duration) -> (Answer, Duration) {
    let started = Instant::now();
    let answer = poll(&format!("/readyz to answer {status}"), within, || async {
        let answer = timed(app, "GET", "/readyz", None).await;
        (answer.status == status).then_some(answer)
    })
    .await;
    (answer, started.elapsed())
}

on_both_backends!(readiness_follows_nats_going_down_and_coming_back);

async fn readiness_follows_nats_going_down_and_coming_back(backend: Backend) {
    let mut nats = PrivateNats::start().await;
    let app = spawn_app_with(backend, &[("NATS_URL", &nats.url())]).await;
    readiness_becomes(&app, 200, BACK_WITHIN).await;

    nats.stop().await;
    let (answer, noticed) = readiness_becomes(&app, 503, NOTICED_WITHIN).await;
    assert_problem(&answer, 503, "unavailable");
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("bus"), "the bus is named: {detail}");
    assert!(!detail.contains("store"), "the store is up: {detail}");
    println!("/readyz noticed NATS gone after {noticed:?}");
    // Commands do not need the bus: the sign-up is stored, and its email goes out once NATS
    // is back (the relay publishes from the store).
    app.sign_up("during.outage@example.com", tests::PASSWORD)
        .await;

    nats.restart().await;
    readiness_becomes(&app, 200, BACK_WITHIN).await;
    app.message_to("during.outage@example.com", "verification code")
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_answered_at_once_and_recovered_from_without_a_restart() {
    let mut postgres = PrivatePostgres::start().await;
    let url = postgres.url();
    // The embedded backend's harness, pointed at the private server instead.
    let app = spawn_app_with(Backend::Embedded, &[("DATABASE_URL", &url)]).await;
    let id = app.sign_up("outage@example.com", tests::PASSWORD).await;
    let token = app.sign_in(&id, tests::PASSWORD).await;
    assert_eq!(app.get("/v1/me", Some(&token)).await.status, 200);

    postgres.stop().await;
    let (answer, noticed) = readiness_becomes(&app, 503, NOTICED_WITHIN).await;
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("store"), "the store is named: {detail}");
    println!("/readyz noticed PostgreSQL gone after {noticed:?}");

    // Every request, from the first one on, is turned away quickly with a problem to retry.
    for _ in 0..5 {
        let me = timed(&app, "GET", "/v1/me", Some(&token)).await;
        assert_problem(&me, 503, "unavailable");
        let sign_in = timed(&app, "POST", "/v1/sessions", None).await;
        assert_problem(&sign_in, 503, "unavailable");
    }
    // The breaker opens (its answers say retry after 1 s; a store failure found the slow way
    // says 2 s), so requests no longer wait for the pool at all.
    poll("the breaker to open", NOTICED_WITHIN, || async {
        let me = timed(&app, "GET", "/v1/me", Some(&token)).await;
        (me.retry_after() == Some(1)).then_some(())
    })
    .await;
    // And a burst of concurrent ones.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let request = app
            .http
            .get(format!("{}/v1/me", app.base))
            .bearer_auth(&token);
        burst.spawn(async move {
            let started = Instant::now();
            let status = request.send().await.map(|r| r.status().as_u16());
            (status, started.elapsed())
        });
    }
    while let Some(done) = burst.join_next().await {
        let (status, took) = done.expect("the request task");
        assert_eq!(status.ok(), Some(503));
        assert!(took < FAST, "a concurrent request took {took:?}");
    }
    // Operations routes stay reachable while the breaker is open.
    assert_eq!(timed(&app, "GET", "/healthz", None).await.status, 200);

    postgres.restart().await;
    readiness_becomes(&app, 200, BACK_WITHIN).await;
    poll("requests to succeed again", BACK_WITHIN, || async {
        (app.get("/v1/me", Some(&token)).await.status == 200).then_some(())
    })
    .await;
    app.stop().await;
}
