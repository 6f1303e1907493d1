//! Password reset from the emailed link (SPEC §2 "Password reset tokens", §3): answered alike for
//! unknown emails; the link lists the verification methods; completion checks the body, then
//! the code; the token is single use; every session of the account ends.

use serde_json::{json, Value};
use tests::{assert_problem, on_both_backends, spawn_app, Backend, TestApp, PASSWORD};

fn completion(new: &str, confirmation: &str, code: Option<&str>) -> Value {
    let mut body = json!({"new_password": new, "new_password_confirmation": confirmation});
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    body
}

/// Asks for a reset of `email` (and of an unknown email, which must be answered alike).
async fn request_reset(app: &TestApp, email: &str) {
    let known = app
        .post("/v1/password-resets", None, json!({"login_email": email}))
        .await;
    assert_eq!(known.status, 202, "{known:?}");
    let unknown = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(
        (unknown.status, &unknown.body),
        (known.status, &known.body),
        "answered alike"
    );
}

/// Every `/v1/password-resets/{token}…` route answers 410 for `token`.
async fn token_is_dead(app: &TestApp, token: &str) {
    assert_problem(
        &app.get(&format!("/v1/password-resets/{token}"), None).await,
        410,
        "reset_token_invalid",
    );
    let code = app
        .post(
            &format!("/v1/password-resets/{token}/verification-codes"),
            None,
            json!({"method": "sms"}),
        )
        .await;
    assert_problem(&code, 410, "reset_token_invalid");
    let done = app
        .post(
            &format!("/v1/password-resets/{token}/completion"),
            None,
            completion("Qx2!rTy8#u", "Qx2!rTy8#u", Some("123456")),
        )
        .await;
    assert_problem(&done, 410, "reset_token_invalid");
}

async fn a_reset_without_recovery_channels_needs_no_code_and_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let new_password = "Zr4$kWp9@n";
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let session = app.sign_in("ada@example.com", PASSWORD).await;

    request_reset(&app, "ada@example.com").await;
    // One request a minute per email, counted whether or not the email is a login email.
    for email in ["ada@example.com", "nobody@example.com"] {
        let again = app
            .post("/v1/password-resets", None, json!({"login_email": email}))
            .await;
        assert_problem(&again, 429, "rate_limited");
    }
    let token = app.reset_token_for(&id).await;
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {token}"
    );
    let base = format!("/v1/password-resets/{token}");

    let methods = app.get(&base, None).await;
    assert_eq!(methods.status, 200, "{methods:?}");
    assert_eq!(methods.body, json!({"verification_methods": []}));
    let no_channel = app
        .post(
            &format!("{base}/verification-codes"),
            None,
            json!({"method": "sms"}),
        )
        .await;
    assert_problem(&no_channel, 400, "invalid_request");

    let done = format!("{base}/completion");
    for weak in ["short1!", "P@ssw0rd1!"] {
        assert_problem(
            &app.post(&done, None, completion(weak, weak, None)).await,
            400,
            "password_policy_violation",
        );
    }
    let mismatch = app
        .post(&done, None, completion(new_password, "Hb8%cXs3^m", None))
        .await;
    assert_problem(&mismatch, 400, "password_mismatch");
    let reused = app
        .post(&done, None, completion(PASSWORD, PASSWORD, None))
        .await;
    assert_problem(&reused, 400, "password_reused");
    assert_eq!(
        app.get(&base, None).await.status,
        200,
        "refused completions do not use the token up"
    );

    let reset = app
        .post(&done, None, completion(new_password, new_password, None))
        .await;
    assert_eq!(reset.status, 204, "{reset:?}");
    assert_eq!(app.count_in_stream(&id, "PasswordReset").await, 1);

    assert_problem(
        &app.get("/v1/me", Some(&session)).await,
        401,
        "unauthenticated",
    );
    let old = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(&old, 401, "invalid_credentials");
    app.sign_in("ada@example.com", new_password).await;

    token_is_dead(&app, &token).await;
    token_is_dead(&app, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    app.stop().await;
}
on_both_backends!(a_reset_without_recovery_channels_needs_no_code_and_ends_every_session);

async fn a_reset_with_a_recovery_mobile_checks_the_body_then_the_sms_code_and_uses_the_token_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let new_password = "Zr4$kWp9@n";
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let session = app.sign_in("ada@example.com", PASSWORD).await;
    app.step_up_by_password(&session, PASSWORD).await;
    let requested = app
        .put(
            "/v1/me/recovery-mobile",
            &session,
            json!({"mobile": "13900139000"}),
        )
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let code = app.code_for(&id).await;
    let confirmed = app
        .post(
            "/v1/me/recovery-mobile/confirmation",
            Some(&session),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");

    request_reset(&app, "ada@example.com").await;
    let token = app.reset_token_for(&id).await;
    let base = format!("/v1/password-resets/{token}");
    let methods = app.get(&base, None).await;
    assert_eq!(methods.status, 200, "{methods:?}");
    assert_eq!(
        methods.body,
        json!({"verification_methods": [{"method": "sms", "masked_target": "+86 139****9000"}]})
    );
    let lacking = app
        .post(
            &format!("{base}/verification-codes"),
            None,
            json!({"method": "email"}),
        )
        .await;
    assert_problem(&lacking, 400, "invalid_request");
    let sent = app
        .post(
            &format!("{base}/verification-codes"),
            None,
            json!({"method": "sms"}),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(sent.body, json!({"masked_target": "+86 139****9000"}));
    let again = app
        .post(
            &format!("{base}/verification-codes"),
            None,
            json!({"method": "sms"}),
        )
        .await;
    assert_problem(&again, 429, "rate_limited");
    let code = app.code_for(&id).await;
    let wrong = crate::wrong_code(&code);

    // The body is checked before the code (even a wrong one)...
    let done = format!("{base}/completion");
    let weak = app
        .post(&done, None, completion("short1!", "short1!", Some(&wrong)))
        .await;
    assert_problem(&weak, 400, "password_policy_violation");
    let mismatch = app
        .post(
            &done,
            None,
            completion(new_password, "Hb8%cXs3^m", Some(&wrong)),
        )
        .await;
    assert_problem(&mismatch, 400, "password_mismatch");
    let reused = app
        .post(&done, None, completion(PASSWORD, PASSWORD, Some(&wrong)))
        .await;
    assert_problem(&reused, 400, "password_reused");
    // ...and a code is required when the account has a verified recovery channel.
    let without = app
        .post(&done, None, completion(new_password, new_password, None))
        .await;
    assert_problem(&without, 400, "invalid_request");
    let wrong_code = app
        .post(
            &done,
            None,
            completion(new_password, new_password, Some(&wrong)),
        )
        .await;
    assert_problem(&wrong_code, 400, "invalid_code");
    assert_eq!(app.count_in_stream(&id, "PasswordReset").await, 0);

    let reset = app
        .post(
            &done,
            None,
            completion(new_password, new_password, Some(&code)),
        )
        .await;
    assert_eq!(reset.status, 204, "{reset:?}");
    token_is_dead(&app, &token).await;

    assert_problem(
        &app.get("/v1/me", Some(&session)).await,
        401,
        "unauthenticated",
    );
    let old = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(&old, 401, "invalid_credentials");
    let token = app.sign_in("ada@example.com", new_password).await;
    assert_eq!(app.me(&token).await["account_id"], id.as_str());
    app.stop().await;
}
on_both_backends!(
    a_reset_with_a_recovery_mobile_checks_the_body_then_the_sms_code_and_uses_the_token_once
);
