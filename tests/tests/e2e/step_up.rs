//! Identity verification during a session (SPEC §2 "step-up"): by password or by a code to the
//! recovery mobile; it authorises every gated request of its own session for ten minutes and is
//! not used up; a method the account lacks answers 400 `invalid_request`.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tests::{assert_problem, on_both_backends, spawn_app, Backend, PASSWORD};

fn ten_minutes_from_now(verified_until: &serde_json::Value) {
    let until: DateTime<Utc> = verified_until
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("verified_until is RFC 3339");
    let expected = Utc::now() + Duration::minutes(10);
    assert!(
        (until - expected).num_seconds().abs() < 30,
        "a step-up lasts ten minutes: {until}"
    );
}

async fn a_step_up_authorises_the_gated_requests_of_its_own_session_for_ten_minutes(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.sign_up("ada@example.com", PASSWORD).await;
    let token = app.sign_in("ada@example.com", PASSWORD).await;
    let other_session = app.sign_in("ada@example.com", PASSWORD).await;

    // Signing in is not a step-up.
    let ungated = app
        .put(
            "/v1/me/contact-mobile",
            &token,
            json!({"mobile": "13900139000"}),
        )
        .await;
    assert_problem(&ungated, 403, "identity_verification_required");

    let started = app
        .post(
            "/v1/me/identity-verifications",
            Some(&token),
            json!({"method": "password"}),
        )
        .await;
    assert_eq!(started.status, 201, "{started:?}");
    assert_eq!(started.body["masked_target"], serde_json::Value::Null);
    let verification = started.body["verification_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let path = format!("/v1/me/identity-verifications/{verification}");

    let wrong = app
        .post(&path, Some(&token), json!({"password": "Zr4$kWp9@n"}))
        .await;
    assert_problem(&wrong, 400, "invalid_credentials");
    let confirmed = app
        .post(&path, Some(&token), json!({"password": PASSWORD}))
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    ten_minutes_from_now(&confirmed.body["verified_until"]);

    // Not used up by a request: two gated requests in a row.
    let contact = app
        .put(
            "/v1/me/contact-mobile",
            &token,
            json!({"mobile": "13900139000"}),
        )
        .await;
    assert_eq!(contact.status, 200, "{contact:?}");
    let recovery = app
        .put(
            "/v1/me/recovery-email",
            &token,
            json!({"email": "rescue@example.org"}),
        )
        .await;
    assert_eq!(recovery.status, 202, "{recovery:?}");

    // It belongs to its session: the account's other session is not verified.
    let elsewhere = app
        .put(
            "/v1/me/contact-mobile",
            &other_session,
            json!({"mobile": "13700137000"}),
        )
        .await;
    assert_problem(&elsewhere, 403, "identity_verification_required");
    // Nor can it use the first session's verification.
    let borrowed = app
        .post(&path, Some(&other_session), json!({"password": PASSWORD}))
        .await;
    assert_eq!(borrowed.status, 400, "{borrowed:?}");
    let still = app
        .put(
            "/v1/me/contact-mobile",
            &other_session,
            json!({"mobile": "13700137000"}),
        )
        .await;
    assert_problem(&still, 403, "identity_verification_required");

    // Methods the account lacks (no recovery mobile; the recovery email is only pending).
    for method in ["sms", "email"] {
        let lacking = app
            .post(
                "/v1/me/identity-verifications",
                Some(&token),
                json!({"method": method}),
            )
            .await;
        assert_problem(&lacking, 400, "invalid_request");
    }
    let unknown_method = app
        .post(
            "/v1/me/identity-verifications",
            Some(&token),
            json!({"method": "carrier_pigeon"}),
        )
        .await;
    assert_problem(&unknown_method, 400, "invalid_request");
    let no_session = app
        .post(
            "/v1/me/identity-verifications",
            None,
            json!({"method": "password"}),
        )
        .await;
    assert_problem(&no_session, 401, "unauthenticated");

    // By SMS to the recovery mobile (an account made with a mobile has one, and no password).
    let mobile_id = app.sign_up_by_mobile("13800138000").await;
    let mobile_token = app.sign_in_by_sms("13800138000").await;
    let by_password = app
        .post(
            "/v1/me/identity-verifications",
            Some(&mobile_token),
            json!({"method": "password"}),
        )
        .await;
    assert_problem(&by_password, 400, "invalid_request");
    let started = app
        .post(
            "/v1/me/identity-verifications",
            Some(&mobile_token),
            json!({"method": "sms"}),
        )
        .await;
    assert_eq!(started.status, 201, "{started:?}");
    assert_eq!(started.body["masked_target"], "+86 138****8000");
    let path = format!(
        "/v1/me/identity-verifications/{}",
        started.body["verification_id"].as_str().expect("an id")
    );
    let code = app.code_for(&mobile_id).await;
    let wrong = app
        .post(
            &path,
            Some(&mobile_token),
            json!({"code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    let before = app
        .put(
            "/v1/me/contact-email",
            &mobile_token,
            json!({"email": "mo@example.com"}),
        )
        .await;
    assert_problem(&before, 403, "identity_verification_required");
    let confirmed = app
        .post(&path, Some(&mobile_token), json!({"code": code}))
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    ten_minutes_from_now(&confirmed.body["verified_until"]);
    let after = app
        .put(
            "/v1/me/contact-email",
            &mobile_token,
            json!({"email": "mo@example.com"}),
        )
        .await;
    assert_eq!(after.status, 200, "{after:?}");
    assert_eq!(app.count_in_stream(&mobile_id, "IdentityVerified").await, 1);
    app.stop().await;
}
on_both_backends!(a_step_up_authorises_the_gated_requests_of_its_own_session_for_ten_minutes);
