//! Concurrency: several sessions of one account, and sign-ups at the same moment (the login
//! email is claimed by exactly one; account IDs are never handed out twice).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tests::{
    assert_problem, on_both_backends, spawn_app, spawn_app_with, Answer, Backend, TestApp, PASSWORD,
};

/// A sign-up as a careful client sends it: when the hashing capacity is full the server answers
/// 503 `unavailable` with `Retry-After` (SPEC §2), and the client waits that long and retries.
async fn sign_up_retrying(app: &TestApp, email: &str) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = app
            .post(
                "/v1/accounts",
                None,
                json!({"login_email": email, "password": PASSWORD}),
            )
            .await;
        if answer.status != 503 {
            return answer;
        }
        assert_problem(&answer, 503, "unavailable");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still 503 after a minute: {answer:?}"
        );
        let wait = answer.retry_after().expect("Retry-After on 503");
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// Stops the app once every task that shared it is done.
async fn stop(app: Arc<TestApp>) {
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
}

async fn two_sessions_of_one_account_both_work_until_one_signs_out(backend: Backend) {
    let app = Arc::new(spawn_app(backend).await);
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let first = app.sign_in("ada@example.com", PASSWORD).await;
    let second = app.sign_in(&id, PASSWORD).await;
    assert_ne!(first, second);

    let mut reads = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (app, token) = (
            Arc::clone(&app),
            if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            },
        );
        reads.spawn(async move { app.get("/v1/me", Some(&token)).await });
    }
    while let Some(read) = reads.join_next().await {
        let read = read.expect("the request task");
        assert_eq!(
            (read.status, &read.body["account_id"]),
            (200, &json!(id)),
            "{read:?}"
        );
    }

    assert_eq!(
        app.delete("/v1/sessions/current", Some(&first))
            .await
            .status,
        204
    );
    assert_problem(
        &app.get("/v1/me", Some(&first)).await,
        401,
        "unauthenticated",
    );
    assert_eq!(app.me(&second).await["account_id"], id.as_str());
    stop(app).await;
}
on_both_backends!(two_sessions_of_one_account_both_work_until_one_signs_out);

async fn concurrent_sign_ups_get_distinct_ids_and_one_email_goes_to_exactly_one_of_them(
    backend: Backend,
) {
    let app = Arc::new(spawn_app_with(backend, &[("ACCOUNTD_IP_RATE_LIMIT", "0")]).await);

    let mut sign_ups = tokio::task::JoinSet::new();
    for i in 0..20 {
        let app = Arc::clone(&app);
        sign_ups
            .spawn(async move { sign_up_retrying(&app, &format!("user{i}@example.com")).await });
    }
    let mut ids = HashSet::new();
    while let Some(answer) = sign_ups.join_next().await {
        let answer = answer.expect("the request task");
        assert_eq!(answer.status, 201, "{answer:?}");
        ids.insert(
            answer.body["account_id"]
                .as_str()
                .expect("an id")
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 20, "20 distinct account IDs: {ids:?}");

    let mut same_email = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let app = Arc::clone(&app);
        same_email.spawn(async move { sign_up_retrying(&app, "shared@example.com").await });
    }
    let mut created = 0;
    while let Some(answer) = same_email.join_next().await {
        let answer = answer.expect("the request task");
        if answer.status == 201 {
            created += 1;
        } else {
            assert_problem(&answer, 409, "conflict");
        }
    }
    assert_eq!(created, 1, "exactly one sign-up gets the email");
    assert_eq!(app.events_of_type("AccountRegistered").await.len(), 21);
    app.sign_in("shared@example.com", PASSWORD).await;
    stop(app).await;
}
on_both_backends!(concurrent_sign_ups_get_distinct_ids_and_one_email_goes_to_exactly_one_of_them);
