//! Recovery mobile and email (SPEC §3): a `PUT` after a step-up answers 202 and sends a code to
//! the new value; nothing changes (but the masked pending value) until the code confirms it.

use serde_json::{json, Value};
use tests::{
    assert_problem, on_both_backends, poll, spawn_app, Backend, EVENTUALLY, PASSWORD, SUPPORT_TOKEN,
};

/// `profile` with the pending recovery values cleared: what must not change before confirmation.
fn without_pending(mut profile: Value) -> Value {
    profile["pending_recovery_mobile"] = Value::Null;
    profile["pending_recovery_email"] = Value::Null;
    profile
}

async fn recovery_mobile_and_email_change_only_when_the_code_sent_to_the_new_value_confirms_it(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let token = app.sign_in("ada@example.com", PASSWORD).await;
    app.step_up_by_password(&token, PASSWORD).await;

    let before = app.me(&token).await;
    let requested = app
        .put(
            "/v1/me/recovery-mobile",
            &token,
            json!({"mobile": "+86 139 0013 9000"}),
        )
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let pending = app.me(&token).await;
    assert_eq!(pending["pending_recovery_mobile"], "+86 139****9000");
    assert_eq!(pending["recovery_mobile"], Value::Null);
    assert_eq!(
        without_pending(pending),
        before,
        "nothing else changes before confirmation"
    );
    assert_eq!(app.count_in_stream(&id, "RecoveryMobileChanged").await, 0);

    let code = app.code_for(&id).await;
    let wrong = app
        .post(
            "/v1/me/recovery-mobile/confirmation",
            Some(&token),
            json!({"code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    assert_eq!(app.me(&token).await["recovery_mobile"], Value::Null);
    let confirmed = app
        .post(
            "/v1/me/recovery-mobile/confirmation",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let me = app.me(&token).await;
    assert_eq!(
        me["recovery_mobile"],
        json!({"value": "+86 139****9000", "verified": true})
    );
    assert_eq!(me["pending_recovery_mobile"], Value::Null);
    assert_eq!(app.count_in_stream(&id, "RecoveryMobileChanged").await, 1);
    // A verified recovery mobile is found by the support lookup.
    poll(
        "the lookup by the new recovery mobile",
        EVENTUALLY,
        || async {
            let found = app
                .get(
                    "/internal/v1/lookup/mobile/%2B8613900139000",
                    Some(SUPPORT_TOKEN),
                )
                .await;
            (found.body == json!({"account_ids": [id]})).then_some(())
        },
    )
    .await;

    let before = app.me(&token).await;
    let requested = app
        .put(
            "/v1/me/recovery-email",
            &token,
            json!({"email": "rescue@example.org"}),
        )
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let pending = app.me(&token).await;
    assert_eq!(pending["pending_recovery_email"], "r***e@example.org");
    assert_eq!(pending["recovery_email"], Value::Null);
    assert_eq!(
        without_pending(pending),
        before,
        "nothing else changes before confirmation"
    );

    let code = app.code_for(&id).await;
    let wrong = app
        .post(
            "/v1/me/recovery-email/confirmation",
            Some(&token),
            json!({"code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    let confirmed = app
        .post(
            "/v1/me/recovery-email/confirmation",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    let me = app.me(&token).await;
    assert_eq!(
        me["recovery_email"],
        json!({"value": "r***e@example.org", "verified": true})
    );
    assert_eq!(me["pending_recovery_email"], Value::Null);
    // The contact email (the login email, from sign-up) and the recovery email differ.
    let warnings: Vec<&str> = me["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert_eq!(warnings, ["contact_recovery_email_differ"], "{me}");

    // The verified recovery email is a step-up method now.
    let started = app
        .post(
            "/v1/me/identity-verifications",
            Some(&token),
            json!({"method": "email"}),
        )
        .await;
    assert_eq!(started.status, 201, "{started:?}");
    assert_eq!(started.body["masked_target"], "r***e@example.org");
    let verification = started.body["verification_id"].as_str().expect("an id");
    let step_up_code = app.code_for(&id).await;
    let verified = app
        .post(
            &format!("/v1/me/identity-verifications/{verification}"),
            Some(&token),
            json!({"code": step_up_code}),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");

    // Without a pending change there is nothing to confirm.
    let nothing = app
        .post(
            "/v1/me/recovery-email/confirmation",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_problem(&nothing, 400, "code_expired");
    app.stop().await;
}
on_both_backends!(
    recovery_mobile_and_email_change_only_when_the_code_sent_to_the_new_value_confirms_it
);
