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

    // By login mobile with an SMS code for sign-in. A code request for a mobile that is nobody's
    // login mobile is answered alike, and nothing is sent.
    let mobile_id = app.sign_up_by_mobile("13900139000").await;
    let unknown = app
        .post(
            "/v1/sms-codes",
            None,
            json!({"mobile": "13700137000", "purpose": "login"}),
        )
        .await;
    let known = app
        .post(
            "/v1/sms-codes",
            None,
            json!({"mobile": "0086-139-0013-9000", "purpose": "login"}),
        )
        .await;
    assert_eq!(
        (unknown.status, known.status),
        (202, 202),
        "{unknown:?} {known:?}"
    );
    let keys = |body: &serde_json::Value| {
        body.as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>())
    };
    assert_eq!(keys(&unknown.body), keys(&known.body), "the same shape");
    let code_id = known.body["code_id"]
        .as_str()
        .expect("a code id")
        .to_owned();
    let unknown_id = unknown.body["code_id"]
        .as_str()
        .expect("a code id")
        .to_owned();
    let code = app.code_for(&code_id).await;
    assert_eq!(
        app.stream(&unknown_id).await,
        Vec::new(),
        "no challenge for an unknown mobile"
    );
    let guessed = app
        .post(
            "/v1/sessions",
            None,
            json!({"mobile": "13700137000", "code_id": unknown_id, "code": code}),
        )
        .await;
    assert_problem(&guessed, 400, "invalid_code");
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

    let wrong = json!({"login": "ada@example.com", "password": "Wrong#1pw"});
    // A success resets the count: four failures, a success, four failures lock nothing...
    for _ in 0..4 {
        assert_problem(
            &app.post("/v1/sessions", None, wrong.clone()).await,
            401,
            "invalid_credentials",
        );
    }
    app.sign_in("ada@example.com", PASSWORD).await;
    for _ in 0..4 {
        assert_problem(
            &app.post("/v1/sessions", None, wrong.clone()).await,
            401,
            "invalid_credentials",
        );
    }
    assert_eq!(app.count_in_stream(&id, "SignInLocked").await, 0);
    // ...and the fifth consecutive one does.
    assert_problem(
        &app.post("/v1/sessions", None, wrong).await,
        401,
        "invalid_credentials",
    );
    assert_eq!(app.count_in_stream(&id, "SignInFailed").await, 9);
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

    // Every failed password check counts: step-up by password and the current password of a
    // change as much as sign-in.
    let other = app.sign_up("bob@example.com", PASSWORD).await;
    let token = app.sign_in("bob@example.com", PASSWORD).await;
    app.step_up_by_password(&token, PASSWORD).await;
    let wrong = "Nw5&dJq6*t";
    let change = json!({"current_password": wrong, "new_password": "Zr4$kWp9@n", "new_password_confirmation": "Zr4$kWp9@n"});
    for _ in 0..2 {
        assert_problem(
            &app.put("/v1/me/password", &token, change.clone()).await,
            400,
            "invalid_credentials",
        );
    }
    for _ in 0..2 {
        let started = app
            .post(
                "/v1/me/identity-verifications",
                Some(&token),
                json!({"method": "password"}),
            )
            .await;
        let path = format!(
            "/v1/me/identity-verifications/{}",
            started.body["verification_id"].as_str().expect("an id")
        );
        assert_problem(
            &app.post(&path, Some(&token), json!({"password": wrong}))
                .await,
            400,
            "invalid_credentials",
        );
    }
    let fifth = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "bob@example.com", "password": wrong}),
        )
        .await;
    assert_problem(&fifth, 401, "invalid_credentials");
    assert_eq!(app.count_in_stream(&other, "SignInLocked").await, 1);
    let locked = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": other, "password": PASSWORD}),
        )
        .await;
    assert_problem(&locked, 429, "locked");

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
