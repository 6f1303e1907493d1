//! Operations endpoints: liveness, readiness, and Prometheus metrics that count requests,
//! command outcomes and projection lag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tests::{on_both_backends, Backend};

on_both_backends!(health_readiness_and_metrics_answer);
on_both_backends!(a_shutdown_waits_for_the_work_requests_left_after_their_answer);

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let app = tests::spawn_app(backend).await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(app.get("/readyz", None).await.status, 200);
    let id = app.sign_up("ops@example.com", "Tq7#vLm2!x").await;
    tests::poll(
        "the projector applies the sign-up",
        std::time::Duration::from_secs(10),
        || async {
            let found = app
                .get(
                    &format!("/internal/v1/accounts/{id}"),
                    Some(tests::SUPPORT_TOKEN),
                )
                .await;
            (found.status == 200).then_some(())
        },
    )
    .await;
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("a text body");
    for name in [
        "accountd_http_requests_total",
        "accountd_http_request_seconds",
        "accountd_commands_total",
        "accountd_projection_lag_seconds",
        "accountd_projection_events_applied_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    app.stop().await;
}

/// A 202 for a code, a reset link or a recovery is followed by the work that sends it: a graceful
/// shutdown (a rolling deploy's SIGTERM) must not drop that work once the answer has gone.
async fn a_shutdown_waits_for_the_work_requests_left_after_their_answer(backend: Backend) {
    let mut app = tests::spawn_app(backend).await;
    let id = app.sign_up("leaving@example.com", "Tq7#vLm2!x").await;
    // Work that is still running when the signal comes.
    let ended = Arc::new(AtomicBool::new(false));
    let flag = ended.clone();
    app.after_answer().spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        flag.store(true, Ordering::SeqCst);
    });
    // And a real flow's: the reset link is issued after the 202.
    let asked = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "leaving@example.com"}),
        )
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    app.stop_serving().await;
    assert!(
        ended.load(Ordering::SeqCst),
        "the application stopped before the work after an answer ended"
    );
    assert_eq!(app.count_in_stream(&id, "ResetTokenIssued").await, 1);
}
