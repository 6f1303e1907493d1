//! "This wasn't me" (docs/adr/0009): the link a security notice carries freezes the account,
//! ends every session and reverts the change it was about; it works once and only for its own
//! change; the audit trail shows each step and still verifies; a completed reset unfreezes.

use domain::Sealed;
use serde_json::{json, Value};
use tests::{
    assert_problem, on_both_backends, poll, spawn_app, Backend, TestApp, AUDITOR_TOKEN, EVENTUALLY,
    PASSWORD, SUPPORT_TOKEN,
};

const OWNER_MOBILE: &str = "+8613800138000";
const HOSTILE_MOBILE: &str = "+8613900139000";

/// The protection token of the newest `event_type` of `account_id`, opened from its sealed copy
/// (what the notifier puts in the notice's link).
async fn protection_token(app: &TestApp, account_id: &str, event_type: &str) -> String {
    let (_, payload) = app
        .stream(account_id)
        .await
        .into_iter()
        .rev()
        .find(|(t, _)| t == event_type)
        .unwrap_or_else(|| panic!("no {event_type} for {account_id}"));
    let sealed: Sealed = serde_json::from_value(payload["protection"]["sealed_token"].clone())
        .unwrap_or_else(|e| panic!("{event_type} carries no sealed link: {e}: {payload}"));
    app.keyring.open(&sealed).expect("the test key opens it")
}

/// Sets the recovery mobile of the account behind `session` through request and confirmation.
async fn set_recovery_mobile(app: &TestApp, id: &str, session: &str, mobile: &str) {
    let requested = app
        .put("/v1/me/recovery-mobile", session, json!({"mobile": mobile}))
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let code = app.code_for(id).await;
    let confirmed = app
        .post(
            "/v1/me/recovery-mobile/confirmation",
            Some(session),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn a_hostile_recovery_mobile_change_is_undone_from_its_notice(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let owner = app.sign_in("ada@example.com", PASSWORD).await;
    app.step_up_by_password(&owner, PASSWORD).await;
    set_recovery_mobile(&app, &id, &owner, OWNER_MOBILE).await;
    let owners_link = protection_token(&app, &id, "RecoveryMobileChanged").await;

    // An intruder with the password moves the recovery mobile to their own phone.
    let hostile = app.sign_in("ada@example.com", PASSWORD).await;
    app.step_up_by_password(&hostile, PASSWORD).await;
    set_recovery_mobile(&app, &id, &hostile, HOSTILE_MOBILE).await;
    let link = protection_token(&app, &id, "RecoveryMobileChanged").await;
    assert_ne!(link, owners_link);
    assert!(link.starts_with(&format!("{id}.")), "{link}");

    // The owner follows the link of the notice sent to the old mobile.
    let secured = app
        .post(&format!("/v1/account-protection/{link}"), None, json!({}))
        .await;
    assert_eq!(secured.status, 200, "{secured:?}");
    assert_eq!(
        secured.body,
        json!({"frozen": true, "change": "recovery_mobile", "reverted": true})
    );

    // Every session ended, the intruder's first of all; password sign-in waits for a reset.
    assert_problem(
        &app.get("/v1/me", Some(&hostile)).await,
        401,
        "unauthenticated",
    );
    assert_problem(
        &app.get("/v1/me", Some(&owner)).await,
        401,
        "unauthenticated",
    );
    let sign_in = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(&sign_in, 403, "account_frozen");

    // A used link, and links that were never issued, are refused alike.
    for token in [link.clone(), format!("{id}.forged"), "nonsense".to_owned()] {
        let again = app
            .post(&format!("/v1/account-protection/{token}"), None, json!({}))
            .await;
        assert_problem(&again, 410, "protection_token_invalid");
    }

    // The old mobile is back: in the read models (support profile, lookups) too.
    poll("the read model reverted", EVENTUALLY, || async {
        let profile = app
            .get(&format!("/internal/v1/accounts/{id}"), Some(SUPPORT_TOKEN))
            .await;
        (profile.body["recovery_mobile"]["value"] == OWNER_MOBILE && profile.body["frozen"] == true)
            .then_some(())
    })
    .await;
    poll(
        "the lookup by the hostile mobile empty",
        EVENTUALLY,
        || async {
            let found = app
                .get(
                    "/internal/v1/lookup/mobile/%2B8613900139000",
                    Some(SUPPORT_TOKEN),
                )
                .await;
            (found.body == json!({"account_ids": []})).then_some(())
        },
    )
    .await;

    // The audit trail shows each step, the state at that instant is frozen, the chain holds.
    let base = format!("/internal/v1/audit/accounts/{id}");
    let history = app
        .get(&format!("{base}/events?limit=1000"), Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(history.status, 200, "{history:?}");
    let events = history.body["events"].as_array().expect("events").clone();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    let tail = &types[types.len() - 2..];
    assert_eq!(tail, ["AccountFrozen", "ChangeReverted"], "{types:?}");
    let reverted = &events[events.len() - 1]["payload"]["change"];
    assert_eq!(
        reverted,
        &json!({"kind": "recovery_mobile", "previous": OWNER_MOBILE, "mobile": HOSTILE_MOBILE})
    );
    let text = history.body.to_string();
    assert!(
        !text.contains("ciphertext"),
        "no sealed link in audit output"
    );
    assert!(!text.contains(&link), "no link in clear");
    let frozen_at = now();
    let state = app
        .get(&format!("{base}/state?at={frozen_at}"), Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(state.status, 200, "{state:?}");
    assert_eq!(state.body["frozen"], true);
    assert_eq!(state.body["recovery_mobile"]["value"], OWNER_MOBILE);
    let verified = app
        .get(&format!("{base}/verification"), Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(verified.body["ok"], true, "{verified:?}");

    // What `accountd audit state ID --at T` and `accountd audit verify ID` print (the CLI's own
    // functions): the frozen state with the restored mobile, and a chain that holds after the
    // revert.
    {
        use gateway::audit::{self, Format, VerifyTarget};
        let service = &audit::service(&app.store, app.read.clone(), 90);
        let account = domain::values::AccountId::parse(&id).expect("an account id");
        let at: chrono::DateTime<chrono::Utc> = frozen_at.parse().expect("RFC 3339");
        let mut out = Vec::new();
        assert!(audit::state(service, &account, at, Format::Json, &mut out)
            .await
            .unwrap());
        let printed: Value = serde_json::from_slice(&out).expect("the state as JSON");
        assert_eq!(printed["frozen"], true, "{printed}");
        assert_eq!(printed["recovery_mobile"]["value"], OWNER_MOBILE);
        let mut text = Vec::new();
        audit::state(service, &account, at, Format::Text, &mut text)
            .await
            .unwrap();
        let text = String::from_utf8(text).expect("UTF-8");
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["frozen", "true"]),
            "{text}"
        );
        let mut out = Vec::new();
        let ok = audit::verify(
            service,
            VerifyTarget::Account(account),
            Format::Json,
            &mut out,
        )
        .await
        .unwrap();
        let report: Value = serde_json::from_slice(&out).expect("the report as JSON");
        assert!(ok && report["ok"] == true, "{report}");
    }

    // A completed reset (link to the login email, code to the restored mobile) unfreezes.
    let asked = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "ada@example.com"}),
        )
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let reset = app.reset_token_for(&id).await;
    let sent = app
        .post(
            &format!("/v1/password-resets/{reset}/verification-codes"),
            None,
            json!({"method": "sms"}),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(sent.body["masked_target"], "+86 138****8000");
    let code = app.code_for(&id).await;
    let new_password = "Zr8#kLq2!w";
    let done = app
        .post(
            &format!("/v1/password-resets/{reset}/completion"),
            None,
            json!({"new_password": new_password, "new_password_confirmation": new_password,
                   "code": code}),
        )
        .await;
    assert_eq!(done.status, 204, "{done:?}");
    assert_eq!(app.count_in_stream(&id, "AccountUnfrozen").await, 1);
    let back = app.sign_in("ada@example.com", new_password).await;
    assert_eq!(app.me(&back).await["frozen"], false);
    // The owner's own earlier link is still unused: it freezes again, but reverts nothing, as
    // the change it was about (the first recovery mobile) no longer stands.
    let late = app
        .post(
            &format!("/v1/account-protection/{owners_link}"),
            None,
            json!({}),
        )
        .await;
    assert_eq!(late.status, 200, "{late:?}");
    assert_eq!(late.body["reverted"], false);
    app.stop().await;
}
on_both_backends!(a_hostile_recovery_mobile_change_is_undone_from_its_notice);

async fn a_reverted_contact_email_is_gone_and_the_session_that_set_it_ended(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.sign_up_by_mobile(OWNER_MOBILE).await;
    let session = app.sign_in_by_sms(OWNER_MOBILE).await;
    app.step_up_by_sms(&session, &id).await;
    let changed = app
        .put(
            "/v1/me/contact-email",
            &session,
            json!({"email": "intruder@example.com"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let link = protection_token(&app, &id, "ContactEmailChanged").await;
    let secured = app
        .post(&format!("/v1/account-protection/{link}"), None, json!({}))
        .await;
    assert_eq!(secured.body["change"], "contact_email", "{secured:?}");
    assert_eq!(secured.body["reverted"], true);

    assert_problem(
        &app.get("/v1/me", Some(&session)).await,
        401,
        "unauthenticated",
    );

    // The account had no contact email before: it has none again, and is frozen.
    let state = app
        .get(
            &format!("/internal/v1/audit/accounts/{id}/state?at={}", now()),
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(state.body["contact_email"], Value::Null, "{state:?}");
    assert_eq!(state.body["frozen"], true);
    app.stop().await;
}
on_both_backends!(a_reverted_contact_email_is_gone_and_the_session_that_set_it_ended);
