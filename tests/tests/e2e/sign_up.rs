//! Sign-up by email (SPEC §1: the login email is also the unverified contact email, and one code
//! goes to it) and by mobile (a code proves the number, which becomes login, recovery and
//! contact mobile, all verified).

use serde_json::json;
use tests::{assert_problem, on_both_backends, spawn_app, Backend, PASSWORD};

async fn signing_up_by_email_makes_the_login_email_the_unverified_contact_email_and_refuses_a_taken_one(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    let weak = app
        .post(
            "/v1/accounts",
            None,
            json!({"login_email": "ada@example.com", "password": "short1!"}),
        )
        .await;
    assert_problem(&weak, 400, "password_policy_violation");
    let not_an_email = app
        .post(
            "/v1/accounts",
            None,
            json!({"login_email": "ada-at-example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(&not_an_email, 400, "invalid_request");

    // Emails are trimmed and their domain lower-cased; the local part is kept as typed.
    let created = app
        .post(
            "/v1/accounts",
            None,
            json!({"login_email": "  Ada@Example.COM ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["account_id"]
        .as_str()
        .expect("an account id as a string")
        .to_owned();
    assert_eq!(id, "100000000001", "the first account ID");

    // The domain is compared lower-cased.
    let token = app.sign_in("Ada@EXAMPLE.com", PASSWORD).await;
    let me = app.me(&token).await;
    let changed_at = me["password_changed_at"].clone();
    assert!(changed_at.is_string(), "{me}");
    assert_eq!(
        me,
        json!({
            "account_id": id,
            "login_email": "Ada@example.com", "login_mobile": null,
            "contact_mobile": null,
            "contact_email": {"value": "Ada@example.com", "verified": false},
            "recovery_mobile": null, "recovery_email": null,
            "pending_recovery_mobile": null, "pending_recovery_email": null, "pending_login_email": null,
            "servers": [],
            "password_set": true, "password_changed_at": changed_at, "password_change_recommended": false,
            "warnings": [], "frozen": false
        })
    );

    // The one code sent at sign-up confirms the contact email.
    let code = app.code_for(&id).await;
    let verified = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    assert_eq!(
        app.me(&token).await["contact_email"],
        json!({"value": "Ada@example.com", "verified": true})
    );

    for taken in ["Ada@example.com", " Ada@EXAMPLE.com"] {
        let again = app
            .post(
                "/v1/accounts",
                None,
                json!({"login_email": taken, "password": "Zr4$kWp9@n"}),
            )
            .await;
        assert_problem(&again, 409, "conflict");
    }
    // Another local part is another email.
    let other = app
        .post(
            "/v1/accounts",
            None,
            json!({"login_email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(other.status, 201, "{other:?}");
    assert_ne!(other.body["account_id"], id.as_str());
    assert_eq!(app.events_of_type("AccountRegistered").await.len(), 2);
    app.stop().await;
}
on_both_backends!(
    signing_up_by_email_makes_the_login_email_the_unverified_contact_email_and_refuses_a_taken_one
);

async fn signing_up_by_mobile_proves_the_number_and_makes_it_login_recovery_and_contact_mobile(
    backend: Backend,
) {
    let app = spawn_app(backend).await;

    let requested = app
        .post(
            "/v1/sms-codes",
            None,
            json!({"mobile": "138 0013 8000", "purpose": "signup"}),
        )
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let code_id = requested.body["code_id"]
        .as_str()
        .expect("a code id")
        .to_owned();
    // The challenge is issued after the answer.
    let code = app.code_for(&code_id).await;

    let wrong = app
        .post(
            "/v1/accounts",
            None,
            json!({"mobile": "+8613800138000", "code_id": code_id, "code": crate::wrong_code(&code)}),
        )
        .await;
    assert_problem(&wrong, 400, "invalid_code");
    // A code is bound to its target: the right code for another number is refused.
    let other_number = app
        .post(
            "/v1/accounts",
            None,
            json!({"mobile": "+8613900139000", "code_id": code_id, "code": code}),
        )
        .await;
    assert_eq!(other_number.status, 400, "{other_number:?}");

    let created = app
        .post(
            "/v1/accounts",
            None,
            json!({"mobile": "+86 138-0013-8000", "code_id": code_id, "code": code}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.body["account_id"]
        .as_str()
        .expect("an account id")
        .to_owned();

    let token = app.sign_in_by_sms("13800138000").await;
    let me = app.me(&token).await;
    assert_eq!(
        me,
        json!({
            "account_id": id,
            "login_email": null, "login_mobile": "+8613800138000",
            "contact_mobile": {"value": "+8613800138000", "verified": true},
            "contact_email": null,
            "recovery_mobile": {"value": "+86 138****8000", "verified": true},
            "recovery_email": null,
            "pending_recovery_mobile": null, "pending_recovery_email": null, "pending_login_email": null,
            "servers": [],
            "password_set": false, "password_changed_at": null, "password_change_recommended": false,
            "warnings": [], "frozen": false
        })
    );

    // A second sign-up with the same mobile. A new sign-up code to it within a minute is
    // refused by the per-target cooldown (requests count whether or not an account exists)...
    let second_code = app
        .post(
            "/v1/sms-codes",
            None,
            json!({"mobile": "+8613800138000", "purpose": "signup"}),
        )
        .await;
    assert_problem(&second_code, 429, "rate_limited");
    // ...and answering with the proof again is refused: the mobile is taken and the code used up.
    let second = app
        .post(
            "/v1/accounts",
            None,
            json!({"mobile": "+8613800138000", "code_id": code_id, "code": code}),
        )
        .await;
    assert!(
        matches!(
            (second.status, second.code()),
            (409, Some("conflict")) | (400, Some("code_expired"))
        ),
        "a second sign-up with a taken mobile: {second:?}"
    );
    assert!(
        second.header("content-type") == Some("application/problem+json"),
        "{second:?}"
    );
    assert_eq!(app.events_of_type("AccountRegistered").await.len(), 1);
    app.stop().await;
}
on_both_backends!(
    signing_up_by_mobile_proves_the_number_and_makes_it_login_recovery_and_contact_mobile
);
