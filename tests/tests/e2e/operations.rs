//! Operations endpoints: liveness, readiness, and Prometheus metrics that count requests,
//! command outcomes and projection lag.

use tests::{on_both_backends, Backend};

on_both_backends!(health_readiness_and_metrics_answer);

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
