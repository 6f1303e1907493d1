//! The reset page (SPEC §3 "Pages") as a person uses it: the link from the reset email opened in
//! headless Chromium, a verification method chosen, the emailed code and a new password typed in.
//! Codes and the link are read from the outbox the notifier wrote, as a person reads their mail.

use std::time::Duration;

use gateway::outbox::{wait, Kind};
use serde_json::json;
use tests::browser::Browser;
use tests::{assert_problem, on_both_backends, spawn_app, Backend, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "Qx2!rTy8#u";
const RECOVERY_EMAIL: &str = "rescue@example.org";

/// The newest code (or link) to `to` written after the first `mark` messages.
async fn mail(app: &TestApp, to: &str, kind: Kind, mark: usize) -> String {
    let outbox = gateway::workers::outbox_path(&app.data_dir);
    wait(&outbox, to, kind, mark, Duration::from_secs(20))
        .await
        .expect("the message arrives")
}

/// An account whose recovery email is verified, so that the reset page offers a method.
async fn account_with_recovery_email(app: &TestApp, email: &str) {
    app.sign_up(email, PASSWORD).await;
    let session = app.sign_in(email, PASSWORD).await;
    app.step_up_by_password(&session, PASSWORD).await;
    let mark = app.outbox().len();
    let requested = app
        .put(
            "/v1/me/recovery-email",
            &session,
            json!({"email": RECOVERY_EMAIL}),
        )
        .await;
    assert_eq!(requested.status, 202, "{requested:?}");
    let code = mail(app, RECOVERY_EMAIL, Kind::Code, mark).await;
    let confirmed = app
        .post(
            "/v1/me/recovery-email/confirmation",
            Some(&session),
            json!({"code": code}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
}

fn visible(id: &str) -> String {
    format!("!document.getElementById('{id}').hidden")
}

async fn a_person_resets_the_password_from_the_emailed_link(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "ada@example.com";
    account_with_recovery_email(&app, email).await;
    let asked = app
        .post("/v1/password-resets", None, json!({"login_email": email}))
        .await;
    assert_eq!(asked.status, 202, "{asked:?}");
    let link = mail(&app, email, Kind::Link, 0).await;
    // The link is built on ACCOUNTD_PUBLIC_URL (its default here); the app listens on port 0.
    let path = link
        .strip_prefix("http://127.0.0.1:8080")
        .unwrap_or_else(|| panic!("a link on the public URL: {link}"));
    assert!(path.starts_with("/reset-password?token="), "{link}");
    let url = format!("{}{path}", app.base);

    let browser = Browser::start().await;
    browser.open(&url).await;
    browser
        .wait_for("document.querySelector('input[name=method][value=email]')")
        .await;
    assert!(
        browser.text("#methods").await.contains("r***e@example.org"),
        "the page shows the masked recovery email"
    );

    let mark = app.outbox().len();
    browser.click("#send-code").await;
    browser.wait_for(&visible("reset-form")).await;
    let code = mail(&app, RECOVERY_EMAIL, Kind::Code, mark).await;

    // A wrong code is answered on the page, and nothing changes.
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );
    browser.type_into("#code", &wrong).await;
    browser.type_into("#new-password", NEW_PASSWORD).await;
    browser
        .type_into("#new-password-confirmation", NEW_PASSWORD)
        .await;
    browser.click("#complete").await;
    browser.wait_for(&visible("message")).await;
    assert!(
        browser
            .eval("return document.getElementById('done').hidden")
            .await
            == true
    );
    app.sign_in(email, PASSWORD).await;

    browser
        .eval("document.getElementById('code').value = ''")
        .await;
    browser.type_into("#code", &code).await;
    browser.click("#complete").await;
    browser.wait_for(&visible("done")).await;

    let old = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, 401, "the old password no longer signs in");
    app.sign_in(email, NEW_PASSWORD).await;

    // The used link now says so.
    browser.open(&url).await;
    browser.wait_for(&visible("message")).await;
    assert!(
        browser.text("#message").await.contains("no longer valid"),
        "a used link says it is no longer valid"
    );
    drop(browser);
    app.stop().await;
}
on_both_backends!(a_person_resets_the_password_from_the_emailed_link);

/// "This wasn't me" (docs/adr/0009): the link of the notice about a new recovery email opened
/// in headless Chromium; nothing happens on load, the button secures the account, the change
/// is undone, password sign-in answers `account_frozen`, and the used link says so.
async fn a_person_secures_the_account_from_a_security_notice(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "grace@example.com";
    account_with_recovery_email(&app, email).await;
    let link = mail(&app, email, Kind::Protection, 0).await;
    let path = link
        .strip_prefix("http://127.0.0.1:8080")
        .unwrap_or_else(|| panic!("a link on the public URL: {link}"));
    assert!(path.starts_with("/secure-account?token="), "{link}");
    let url = format!("{}{path}", app.base);

    let browser = Browser::start().await;
    browser.open(&url).await;
    browser.wait_for(&visible("secure-form")).await;
    // Opening the page changes nothing: a mail scanner following the link freezes nothing.
    app.sign_in(email, PASSWORD).await;

    browser.click("#secure").await;
    browser.wait_for(&visible("done")).await;
    assert!(
        browser.text("#done-revert").await.contains("was undone"),
        "the page says the recovery email change was undone"
    );
    let frozen = app
        .post(
            "/v1/sessions",
            None,
            json!({"login": email, "password": PASSWORD}),
        )
        .await;
    assert_problem(&frozen, 403, "account_frozen");

    // The link works once.
    browser.open(&url).await;
    browser.wait_for(&visible("secure-form")).await;
    browser.click("#secure").await;
    browser.wait_for(&visible("message")).await;
    assert!(
        browser.text("#message").await.contains("no longer valid"),
        "a used link says it is no longer valid"
    );
    drop(browser);
    app.stop().await;
}
on_both_backends!(a_person_secures_the_account_from_a_security_notice);
