//! What people receive, read from the notifier's outbox (the file sink of the embedded default
//! and of tests): the code to the value being verified, security notices to the contact values
//! (old and new), the reset link, and subscribed messages from other services.

use serde_json::json;
use tests::{on_both_backends, Backend, NOTIFIER_TOKEN};

on_both_backends!(codes_notices_reset_links_and_subscribed_messages_reach_the_outbox);

fn six_digit_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(5)).find_map(|i| {
        let run = &bytes[i..i + 6];
        let before = i
            .checked_sub(1)
            .map(|j| bytes[j].is_ascii_digit())
            .unwrap_or(false);
        let after = bytes.get(i + 6).is_some_and(u8::is_ascii_digit);
        (run.iter().all(u8::is_ascii_digit) && !before && !after)
            .then(|| String::from_utf8_lossy(run).into_owned())
    })
}

async fn codes_notices_reset_links_and_subscribed_messages_reach_the_outbox(backend: Backend) {
    let app = tests::spawn_app(backend).await;
    let password = "Tq7#vLm2!x";
    let id = app.sign_up("ada@example.com", password).await;

    // The sign-up code goes to the new contact email, and verifies it.
    let message = app.message_to("ada@example.com", "verification code").await;
    let code = six_digit_code(&message.text).expect("a code in the message");
    let token = app.sign_in("ada@example.com", password).await;
    let verified = app
        .post(
            "/v1/me/contact-email/verification",
            Some(&token),
            json!({"code": code}),
        )
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");

    // A contact change notifies the previous value too.
    app.step_up_by_password(&token, password).await;
    let changed = app
        .put(
            "/v1/me/contact-email",
            &token,
            json!({"email": "ada@lovelace.example"}),
        )
        .await;
    assert_eq!(changed.status, 200);
    let notice = app.message_to("ada@example.com", "contact email").await;
    assert!(six_digit_code(&notice.text).is_none(), "{notice:?}");
    app.message_to("ada@lovelace.example", "verification code")
        .await;

    // The reset link, to the login email, with the configured public URL.
    let reset = app
        .post(
            "/v1/password-resets",
            None,
            json!({"login_email": "ada@example.com"}),
        )
        .await;
    assert_eq!(reset.status, 202);
    let link = app.message_to("ada@example.com", "Reset").await;
    let text = &link.text;
    let url = text
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:8080/reset-password?token="))
        .expect("a reset link");
    let reset_token = url.rsplit('=').next().unwrap().trim_end_matches('.');
    let methods = app
        .get(&format!("/v1/password-resets/{reset_token}"), None)
        .await;
    assert_eq!(methods.status, 200, "the emailed link works: {methods:?}");

    // Other services' messages go to the verified contact values only.
    let verify_new = app
        .message_to("ada@lovelace.example", "verification code")
        .await;
    let code = six_digit_code(&verify_new.text).unwrap();
    app.post(
        "/v1/me/contact-email/verification",
        Some(&token),
        json!({"code": code}),
    )
    .await;
    let sent = app
        .post(
            &format!("/internal/v1/accounts/{id}/notifications"),
            Some(NOTIFIER_TOKEN),
            json!({"kind": "arrears", "subject": "Your bill is overdue", "body": "Please pay the invoice."}),
        )
        .await;
    assert_eq!(sent.status, 202, "{sent:?}");
    app.message_to("ada@lovelace.example", "Your bill is overdue")
        .await;
    let code_like = app
        .post(
            &format!("/internal/v1/accounts/{id}/notifications"),
            Some(NOTIFIER_TOKEN),
            json!({"kind": "event", "subject": "Order 123456", "body": "x"}),
        )
        .await;
    assert_eq!(
        (code_like.status, code_like.code()),
        (400, Some("invalid_request"))
    );

    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{ready:?}");
    app.stop().await;
}
