//! Contact mobile and email (SPEC §3): a `PUT` after a step-up changes the value at once,
//! unverified, and sends a code to it; the code marks it verified.

use serde_json::json;
use tests::{
    assert_problem, on_both_backends, poll, spawn_app, Backend, EVENTUALLY, PASSWORD, SUPPORT_TOKEN,
};

async fn contact_mobile_and_email_change_at_once_unverified_and_the_code_sent_to_them_verifies_them(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let token = app.sign_in("ada@example.com", PASSWORD).await;
    let sign_up_code = app.code_for(&id).await;
    app.step_up_by_password(&token, PASSWORD).await;

    let changed = app
        .put(
            "/v1/me/contact-mobile",
            &token,
            json!({"mobile": "139 0013 9000"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let me = app.me(&token).await;
    assert_eq!(
        me["contact_mobile"],
        json!({"value": "+8613900139000", "verified": false})
    );
    assert_eq!(app.count_in_stream(&id, "ContactMobileChanged").await, 1);

    let code = app.code_for(&id).await;
    let wrong = app
        .post(
            "/v1/me/contact-mobile/verification",
            Some(&token),
            json!({"code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    assert_eq!(
        app.me(&token).await["contact_mobile"],
        json!({"value": "+8613900139000", "verified": false})
    );
    let right = app
        .post(
            "/v1/me/contact-mobile/verification",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(right.status, 200, "{right:?}");
    assert_eq!(
        app.me(&token).await["contact_mobile"],
        json!({"value": "+8613900139000", "verified": true})
    );
    // A contact mobile does not prove who someone is: once the read model has it, the support
    // lookup by mobile (verified recovery and login mobiles) still does not list the account.
    poll(
        "the verified contact mobile in the internal profile",
        EVENTUALLY,
        || async {
            let profile = app
                .get(&format!("/internal/v1/accounts/{id}"), Some(SUPPORT_TOKEN))
                .await;
            (profile.body["contact_mobile"]["verified"] == true).then_some(())
        },
    )
    .await;
    let lookup = app
        .get(
            "/internal/v1/lookup/mobile/%2B8613900139000",
            Some(SUPPORT_TOKEN),
        )
        .await;
    assert_eq!(
        (lookup.status, lookup.body),
        (200, json!({"account_ids": []}))
    );

    let changed = app
        .put(
            "/v1/me/contact-email",
            &token,
            json!({"email": "ada.news@example.com"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let me = app.me(&token).await;
    assert_eq!(
        me["contact_email"],
        json!({"value": "ada.news@example.com", "verified": false})
    );
    assert_eq!(
        me["login_email"], "ada@example.com",
        "the login email is another value"
    );
    // The newer code replaced the one sent at sign-up.
    let replaced = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": sign_up_code}),
        )
        .await;
    assert_problem(&replaced, 400, "code_expired");

    // The fifth wrong attempt kills the code: the right one is then refused as expired.
    let code = app.code_for(&id).await;
    for _ in 0..5 {
        let wrong = app
            .post(
                "/v1/me/contact-email/verification",
                Some(&token),
                json!({"code": crate::wrong_code(&code)}),
            )
            .await;
        assert_problem(&wrong, 400, "invalid_code");
    }
    let dead = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_problem(&dead, 400, "code_expired");
    assert_eq!(app.count_in_stream(&id, "ContactEmailVerified").await, 0);

    // Another address, another code (one a minute per target, so not the same address again).
    let changed = app
        .put(
            "/v1/me/contact-email",
            &token,
            json!({"email": "ada.alerts@example.com"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let again = app
        .put(
            "/v1/me/contact-email",
            &token,
            json!({"email": "ada.alerts@example.com"}),
        )
        .await;
    assert_problem(&again, 429, "rate_limited");

    let code = app.code_for(&id).await;
    let wrong = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    let right = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(right.status, 200, "{right:?}");
    assert_eq!(
        app.me(&token).await["contact_email"],
        json!({"value": "ada.alerts@example.com", "verified": true})
    );
    // Used up by its success.
    let again = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_problem(&again, 400, "code_expired");

    let not_mobile = app
        .put(
            "/v1/me/contact-mobile",
            &token,
            json!({"mobile": "010 1234 5678"}),
        )
        .await;
    assert_problem(&not_mobile, 400, "invalid_request");
    app.stop().await;
}
on_both_backends!(
    contact_mobile_and_email_change_at_once_unverified_and_the_code_sent_to_them_verifies_them
);
