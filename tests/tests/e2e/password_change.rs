//! Changing the password (SPEC §2 "Passwords", §3 order of checks on `PUT /v1/me/password`):
//! 401 → 403 step-up → 409 login email → 400 body (policy, mismatch) → 400 current → 400 reuse;
//! the last three passwords are refused; every other session ends.

use serde_json::{json, Value};
use tests::{assert_problem, on_both_backends, spawn_app, Backend, PASSWORD};

fn change(current: &str, new: &str, confirmation: &str) -> Value {
    json!({"current_password": current, "new_password": new, "new_password_confirmation": confirmation})
}

async fn a_password_change_checks_in_order_refuses_the_last_three_and_ends_every_other_session(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (first, second, third) = (PASSWORD, "Zr4$kWp9@n", "Hb8%cXs3^m");
    let wrong = "Nw5&dJq6*t";
    let id = app.sign_up("ada@example.com", first).await;
    let token = app.sign_in("ada@example.com", first).await;
    let other_session = app.sign_in("ada@example.com", first).await;

    let anonymous = app
        .send(
            "PUT",
            "/v1/me/password",
            None,
            Some(change(first, second, second)),
        )
        .await;
    assert_problem(&anonymous, 401, "unauthenticated");
    // The step-up comes before the body is looked at.
    let ungated = app
        .put("/v1/me/password", &token, change(wrong, "short1!", "x"))
        .await;
    assert_problem(&ungated, 403, "identity_verification_required");
    app.step_up_by_password(&token, first).await;
    let before = app.me(&token).await;
    let reset = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "ada@example.com"}),
        )
        .await;
    assert_eq!(reset.status, 202, "{reset:?}");
    let reset_token = app.reset_token_for(&id).await;
    assert_eq!(
        app.get(&format!("/v1/password-resets/{reset_token}"), None)
            .await
            .status,
        200
    );

    for weak in [
        "short1!",
        "P@ssw0rd1!",
        "password with spaces1!",
        "NoDigitsHere!",
        "nosymbols123",
    ] {
        let refused = app
            .put("/v1/me/password", &token, change(first, weak, weak))
            .await;
        assert_problem(&refused, 400, "password_policy_violation");
    }
    let mismatch = app
        .put("/v1/me/password", &token, change(first, second, third))
        .await;
    assert_problem(&mismatch, 400, "password_mismatch");
    // The body comes before the current password...
    let body_first = app
        .put(
            "/v1/me/password",
            &token,
            change(wrong, "short1!", "short1!"),
        )
        .await;
    assert_problem(&body_first, 400, "password_policy_violation");
    let wrong_current = app
        .put("/v1/me/password", &token, change(wrong, second, second))
        .await;
    assert_problem(&wrong_current, 400, "invalid_credentials");
    // ...and the current password before reuse.
    let current_first = app
        .put("/v1/me/password", &token, change(wrong, first, first))
        .await;
    assert_problem(&current_first, 400, "invalid_credentials");
    let same = app
        .put("/v1/me/password", &token, change(first, first, first))
        .await;
    assert_problem(&same, 400, "password_reused");
    assert_eq!(app.count_in_stream(&id, "PasswordChanged").await, 0);

    let changed = app
        .put("/v1/me/password", &token, change(first, second, second))
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    assert_eq!(changed.text, "");

    // A change invalidates older reset tokens.
    let dead = app
        .get(&format!("/v1/password-resets/{reset_token}"), None)
        .await;
    assert_problem(&dead, 410, "reset_token_invalid");
    // Every other session ends; the one that changed it goes on.
    assert_problem(
        &app.get("/v1/me", Some(&other_session)).await,
        401,
        "unauthenticated",
    );
    let me = app.me(&token).await;
    assert_ne!(me["password_changed_at"], before["password_changed_at"]);
    let old = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "ada@example.com", "password": first}),
        )
        .await;
    assert_problem(&old, 401, "invalid_credentials");
    let new_session = app.sign_in("ada@example.com", second).await;
    assert_eq!(app.me(&new_session).await["account_id"], id.as_str());

    // The current password and the two before it are refused.
    let changed = app
        .put("/v1/me/password", &token, change(second, third, third))
        .await;
    assert_eq!(changed.status, 204, "{changed:?}");
    for reused in [third, second, first] {
        let refused = app
            .put("/v1/me/password", &token, change(third, reused, reused))
            .await;
        assert_problem(&refused, 400, "password_reused");
    }
    assert_problem(
        &app.get("/v1/me", Some(&new_session)).await,
        401,
        "unauthenticated",
    );
    assert_eq!(app.count_in_stream(&id, "PasswordChanged").await, 2);
    app.stop().await;
}
on_both_backends!(
    a_password_change_checks_in_order_refuses_the_last_three_and_ends_every_other_session
);
