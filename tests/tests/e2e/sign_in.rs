//! Sign-in (SPEC §2 "Sign-in"): by login email or account ID with the password, or by login
//! mobile with an SMS code; wrong and unknown credentials answer alike; five failed password
//! checks lock password sign-in for 15 minutes.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tests::{assert_problem, on_both_backends, spawn_app, Backend, PASSWORD};

async fn signing_in_works_by_email_account_id_and_sms_and_refuses_wrong_and_unknown_logins_alike(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;

    let by_email = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(by_email.status, 201, "{by_email:?}");
    assert_eq!(by_email.body["account_id"], id.as_str());
    let token = by_email.body["token"].as_str().expect("a token");
    assert!(token.len() >= 22, "at least 128 random bits: {token}");
    let expires_at: DateTime<Utc> = by_email.body["expires_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("expires_at is RFC 3339");
    let twelve_hours = Utc::now() + Duration::hours(12);
    assert!(
        (expires_at - twelve_hours).num_seconds().abs() < 60,
        "a session lives 12 hours: {expires_at}"
    );
    assert_eq!(app.me(token).await["account_id"], id.as_str());

    let by_id = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": id, "password": PASSWORD}),
        )
        .await;
    assert_eq!(by_id.status, 201, "{by_id:?}");
    assert_eq!(by_id.body["account_id"], id.as_str());
    assert_ne!(
        by_id.body["token"], by_email.body["token"],
        "each sign-in opens its own session"
    );

    let wrong = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "ada@example.com", "password": "Zr4$kWp9@n"}),
        )
        .await;
    assert_problem(&wrong, 401, "invalid_credentials");
    for unknown in ["nobody@example.com", "555555555555", "not a login"] {
        let answer = app
            .post(
                "/v1/sessions",
                None,
                json!({"login": unknown, "password": PASSWORD}),
            )
            .await;
        assert_problem(&answer, 401, "invalid_credentials");
        assert_eq!(
            answer.body, wrong.body,
            "an unknown login is answered like a wrong password"
        );
    }

    // By login mobile with an SMS code for sign-in.
    let mobile_id = app.sign_up_by_mobile("13900139000").await;
    let code_id = app.request_sms_code("+86 139 0013 9000", "login").await;
    let code = app.code_for(&code_id).await;
    let wrong_code = app
        .post(
            "/v1/sessions",
            None,
            json!({"mobile": "13900139000", "code_id": code_id, "code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong_code, 400, "invalid_code");
    let by_sms = app
        .post(
            "/v1/sessions",
            None,
            json!({"mobile": "13900139000", "code_id": code_id, "code": code}),
        )
        .await;
    assert_eq!(by_sms.status, 201, "{by_sms:?}");
    assert_eq!(by_sms.body["account_id"], mobile_id.as_str());
    let sms_token = by_sms.body["token"].as_str().expect("a token").to_owned();
    assert_eq!(app.me(&sms_token).await["login_mobile"], "+8613900139000");
    // The challenge is used up by its success.
    let replayed = app
        .post(
            "/v1/sessions",
            None,
            json!({"mobile": "13900139000", "code_id": code_id, "code": code}),
        )
        .await;
    assert_problem(&replayed, 400, "code_expired");
    // An account made with a mobile has no password to sign in with.
    let no_password = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": mobile_id, "password": PASSWORD}),
        )
        .await;
    assert_problem(&no_password, 401, "invalid_credentials");

    // Signing out ends that session only.
    let out = app.delete("/v1/sessions/current", Some(&sms_token)).await;
    assert_eq!(out.status, 204, "{out:?}");
    assert_problem(
        &app.get("/v1/me", Some(&sms_token)).await,
        401,
        "unauthenticated",
    );
    assert_eq!(app.me(token).await["account_id"], id.as_str());
    app.stop().await;
}
on_both_backends!(
    signing_in_works_by_email_account_id_and_sms_and_refuses_wrong_and_unknown_logins_alike
);

async fn five_wrong_passwords_lock_password_sign_in_even_for_the_right_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;

    for attempt in 1..=5 {
        let wrong = app
            .post(
                "/v1/sessions",
                None,
                json!({"login": "ada@example.com", "password": format!("Wrong#{attempt}pw")}),
            )
            .await;
        assert_problem(&wrong, 401, "invalid_credentials");
    }
    assert_eq!(app.count_in_stream(&id, "SignInFailed").await, 5);
    assert_eq!(app.count_in_stream(&id, "SignInLocked").await, 1);

    for login in ["ada@example.com", id.as_str()] {
        let locked = app
            .post(
                "/v1/sessions",
                None,
                json!({"login": login, "password": PASSWORD}),
            )
            .await;
        assert_problem(&locked, 429, "locked");
        let retry = locked.retry_after().expect("Retry-After");
        assert!(
            (840..=900).contains(&retry),
            "locked for 15 minutes: Retry-After {retry}"
        );
    }

    // Unknown logins never lock: they keep answering invalid_credentials.
    for _ in 0..6 {
        let unknown = app
            .post(
                "/v1/sessions",
                None,
                json!({"login": "nobody@example.com", "password": PASSWORD}),
            )
            .await;
        assert_problem(&unknown, 401, "invalid_credentials");
    }
    app.stop().await;
}
on_both_backends!(five_wrong_passwords_lock_password_sign_in_even_for_the_right_password);
