//! New-sign-in notices (issue 15, docs/adr/0009): a sign-in from a client (IP and user agent)
//! the account had no session from in `ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS` days sends a notice
//! to the contact email with a protection link; following it ends every session, the new one
//! first of all, and freezes the account. With 0 days nothing is looked up or sent.

use serde_json::{json, Value};
use tests::{
    assert_problem, on_both_backends, poll, spawn_app_with, Backend, OutboxLine, TestApp,
    EVENTUALLY, PASSWORD,
};

const SUBJECT: &str = "New sign-in to your account";

/// Signs in `login` from a client with `user_agent`; returns the bearer token.
async fn sign_in_from(app: &TestApp, login: &str, user_agent: &str) -> String {
    let answer = app
        .post_with(
            "/v1/sessions",
            None,
            &[("user-agent", user_agent)],
            json!({"login": login, "password": PASSWORD}),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    answer.body["token"].as_str().expect("a token").to_owned()
}

/// The `new_client` of each `SignedIn` of `account_id`, in order (null when none).
async fn new_clients(app: &TestApp, account_id: &str) -> Vec<Value> {
    app.stream(account_id)
        .await
        .into_iter()
        .filter(|(t, _)| t == "SignedIn")
        .map(|(_, payload)| payload["new_client"].clone())
        .collect()
}

/// The new-sign-in notices in the outbox to `to`, oldest first.
fn notices_to(app: &TestApp, to: &str) -> Vec<OutboxLine> {
    app.outbox()
        .into_iter()
        .filter(|m| m.to == to && m.subject.as_deref() == Some(SUBJECT))
        .collect()
}

/// The protection token at the end of a notice's `…/secure-account?token=…` link.
fn link_token(notice: &OutboxLine) -> String {
    let text = &notice.text;
    let (_, rest) = text
        .split_once("/secure-account?token=")
        .unwrap_or_else(|| panic!("a protection link in {text}"));
    rest.split_whitespace().next().expect("a token").to_owned()
}

async fn a_sign_in_from_a_new_client_is_notified_and_its_link_ends_that_session(backend: Backend) {
    let app = spawn_app_with(backend, &[("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS", "30")]).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;

    // Two sign-ins from one client: only the first, from a client the account had no session
    // from, is recorded as new.
    let owner = sign_in_from(&app, "ada@example.com", "Laptop/1.0").await;
    sign_in_from(&app, "ada@example.com", "Laptop/1.0").await;
    let clients = new_clients(&app, &id).await;
    assert_eq!(clients.len(), 2, "{clients:?}");
    assert_eq!(clients[0]["ip"], "127.0.0.1", "{clients:?}");
    assert_eq!(clients[0]["user_agent"], "Laptop/1.0");
    assert!(clients[0]["protection"]["sealed_token"].is_object());
    assert_eq!(clients[1], Value::Null, "a known client: {clients:?}");

    // A sign-in from another user agent on the same address is new again.
    let intruder = sign_in_from(&app, "ada@example.com", "Intruder/6.6").await;
    assert!(new_clients(&app, &id).await[2].is_object());

    // Notices go out in commit order: once the intruder's is there, a second one for the
    // laptop would be too. One each, to the contact email, naming the client, with a link.
    let notices = poll("both new-sign-in notices", EVENTUALLY, || async {
        let notices = notices_to(&app, "ada@example.com");
        (notices.len() >= 2).then_some(notices)
    })
    .await;
    assert_eq!(notices.len(), 2, "{notices:#?}");
    let text = &notices[1].text;
    assert!(
        text.contains("127.0.0.1") && text.contains("Intruder/6.6"),
        "{text}"
    );
    assert!(notices[0].text.contains("Laptop/1.0"));
    let link = link_token(&notices[1]);
    assert_ne!(
        link,
        link_token(&notices[0]),
        "a link of its own per sign-in"
    );
    assert!(link.starts_with(&format!("{id}.")), "{link}");

    // The link is nowhere in clear but in the notice: not in the events.
    let stream = serde_json::to_string(&app.stream(&id).await).expect("JSON");
    let random = link.split_once('.').expect("<account>.<random>").1;
    assert!(!stream.contains(random), "a protection token in an event");

    // Following it ends every session, the intruder's first of all, and freezes the account;
    // a sign-in has nothing to undo.
    let secured = app
        .post(&format!("/v1/account-protection/{link}"), None, json!({}))
        .await;
    assert_eq!(secured.status, 200, "{secured:?}");
    assert_eq!(
        secured.body,
        json!({"frozen": true, "change": "sign_in", "reverted": false})
    );
    for token in [&intruder, &owner] {
        assert_problem(
            &app.get("/v1/me", Some(token)).await,
            401,
            "unauthenticated",
        );
    }
    let again = app
        .post_with(
            "/v1/sessions",
            None,
            &[("user-agent", "Intruder/6.6")],
            json!({"login": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_problem(&again, 403, "account_frozen");
    let (last, frozen) = app.stream(&id).await.pop().expect("events");
    assert_eq!(last, "AccountFrozen");
    assert_eq!(frozen["change"]["kind"], "sign_in");
    assert_eq!(frozen["change"]["user_agent"], "Intruder/6.6");
    app.stop().await;
}
on_both_backends!(a_sign_in_from_a_new_client_is_notified_and_its_link_ends_that_session);

async fn with_zero_days_no_sign_in_is_notified(backend: Backend) {
    let app = spawn_app_with(backend, &[("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS", "0")]).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    sign_in_from(&app, "ada@example.com", "Laptop/1.0").await;
    sign_in_from(&app, "ada@example.com", "Intruder/6.6").await;
    assert_eq!(new_clients(&app, &id).await, [Value::Null, Value::Null]);
    // A reset link asked for after both sign-ins is delivered after anything they would send.
    let asked = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "ada@example.com"}),
        )
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    app.message_to("ada@example.com", "Reset your accountd password")
        .await;
    assert!(notices_to(&app, "ada@example.com").is_empty());
    app.stop().await;
}
on_both_backends!(with_zero_days_no_sign_in_is_notified);
