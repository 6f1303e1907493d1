//! Binding a login email (SPEC §3 `PUT /v1/me/login-email`): a mobile-only account binds one
//! with a password and then signs in with it; an account that has one is told so before the
//! step-up check; another account's login email is a conflict.

use serde_json::{json, Value};
use tests::{assert_problem, on_both_backends, spawn_app, Backend, PASSWORD};

async fn a_mobile_only_account_binds_a_login_email_with_a_password_and_then_signs_in_with_it(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.sign_up("taken@example.com", PASSWORD).await;
    let id = app.sign_up_by_mobile("13800138000").await;
    let token = app.sign_in_by_sms("13800138000").await;
    let new_password = "Hb8%cXs3^m";
    let email = "mobile.owner@example.com";

    let ungated = app
        .put(
            "/v1/me/login-email",
            &token,
            json!({"email": email, "password": new_password}),
        )
        .await;
    assert_problem(&ungated, 403, "identity_verification_required");
    app.step_up_by_sms(&token, &id).await;

    // Changing the password needs a login email first (after the step-up check, before the
    // body is looked at).
    let change = app
        .put(
            "/v1/me/password",
            &token,
            json!({"current_password": PASSWORD, "new_password": "short1!", "new_password_confirmation": "x"}),
        )
        .await;
    assert_problem(&change, 409, "login_email_required");

    let taken = app
        .put(
            "/v1/me/login-email",
            &token,
            json!({"email": "taken@example.com", "password": new_password}),
        )
        .await;
    assert_problem(&taken, 409, "conflict");
    let no_password = app
        .put("/v1/me/login-email", &token, json!({"email": email}))
        .await;
    assert_problem(&no_password, 400, "invalid_request");
    let weak = app
        .put(
            "/v1/me/login-email",
            &token,
            json!({"email": email, "password": "short1!"}),
        )
        .await;
    assert_problem(&weak, 400, "password_policy_violation");

    // The email is checked at the PUT but claimed at confirmation: someone who signs up with it
    // in between keeps it, and the confirmation answers conflict.
    let raced = app
        .put(
            "/v1/me/login-email",
            &token,
            json!({"email": "race@example.com", "password": new_password}),
        )
        .await;
    assert_eq!(raced.status, 202, "{raced:?}");
    let race_code = app.code_for(&id).await;
    app.sign_up("race@example.com", "Qx2!rTy8#u").await;
    let lost = app
        .post(
            "/v1/me/login-email/confirmation",
            Some(&token),
            json!({"code": race_code}),
        )
        .await;
    assert_problem(&lost, 409, "conflict");
    assert_eq!(app.me(&token).await["login_email"], Value::Null);

    let requested = app
        .put(
            "/v1/me/login-email",
            &token,
            json!({"email": email, "password": new_password}),
        )
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let me = app.me(&token).await;
    assert_eq!(me["pending_login_email"], "m***r@example.com");
    assert_eq!(me["login_email"], Value::Null);
    assert_eq!(
        me["password_set"], false,
        "the password is set at confirmation"
    );
    let early = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": email, "password": new_password}),
        )
        .await;
    assert_problem(&early, 401, "invalid_credentials");

    let code = app.code_for(&id).await;
    let wrong = app
        .post(
            "/v1/me/login-email/confirmation",
            Some(&token),
            json!({"code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    let confirmed = app
        .post(
            "/v1/me/login-email/confirmation",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let me = app.me(&token).await;
    assert_eq!(me["login_email"], email);
    assert_eq!(me["pending_login_email"], Value::Null);
    assert_eq!(me["password_set"], true);
    assert_eq!(
        me["contact_email"],
        Value::Null,
        "binding does not change the contact email"
    );
    assert_eq!(app.count_in_stream(&id, "LoginEmailBound").await, 1);

    let signed_in = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": email, "password": new_password}),
        )
        .await;
    assert_eq!(signed_in.status, 201, "{signed_in:?}");
    assert_eq!(signed_in.body["account_id"], id.as_str());

    // Bound now, so another binding is refused before any step-up is asked for.
    let fresh_session = signed_in.body["token"].as_str().expect("a token");
    let again = app
        .put(
            "/v1/me/login-email",
            fresh_session,
            json!({"email": "second@example.com"}),
        )
        .await;
    assert_problem(&again, 409, "login_email_already_bound");
    // And so for an account made with an email.
    let email_account = app.sign_in("taken@example.com", PASSWORD).await;
    let bound = app
        .put(
            "/v1/me/login-email",
            &email_account,
            json!({"email": "other@example.com"}),
        )
        .await;
    assert_problem(&bound, 409, "login_email_already_bound");
    app.stop().await;
}
on_both_backends!(
    a_mobile_only_account_binds_a_login_email_with_a_password_and_then_signs_in_with_it
);
