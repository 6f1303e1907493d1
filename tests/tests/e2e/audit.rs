//! The audit API through HTTP: paged events with secrets removed, the state at an instant, and
//! chain verification that notices a payload edited in the database.

use serde_json::json;
use tests::{on_both_backends, Backend, AUDITOR_TOKEN, SUPPORT_TOKEN};

on_both_backends!(auditors_page_through_history_replay_state_and_detect_an_edited_event);

async fn auditors_page_through_history_replay_state_and_detect_an_edited_event(backend: Backend) {
    let app = tests::spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", "Tq7#vLm2!x").await;
    let before_change = chrono::Utc::now();
    let token = app.sign_in("ada@example.com", "Tq7#vLm2!x").await;
    app.step_up_by_password(&token, "Tq7#vLm2!x").await;
    let changed = app
        .put(
            "/v1/me/contact-email",
            &token,
            json!({"email": "ada@lovelace.example"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let base = format!("/internal/v1/audit/accounts/{id}");

    // Roles: the support token is not an auditor.
    let refused = app
        .get(&format!("{base}/events"), Some(SUPPORT_TOKEN))
        .await;
    assert_eq!((refused.status, refused.code()), (403, Some("forbidden")));

    // Paging: two at a time, `after` exclusive, in sequence order, nothing missed.
    let mut sequences = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(
                &format!("{base}/events?after={after}&limit=2"),
                Some(AUDITOR_TOKEN),
            )
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        let events = page.body["events"].as_array().expect("events").clone();
        assert!(events.len() <= 2);
        if events.is_empty() {
            break;
        }
        for event in &events {
            let text = event.to_string();
            assert!(!text.contains("$argon2"), "no password hash: {text}");
            assert!(!text.contains("ciphertext"), "no sealed value: {text}");
            assert_eq!(event["chain_hash"].as_str().map(str::len), Some(64));
            sequences.push(event["sequence"].as_u64().expect("a sequence"));
        }
        after = *sequences.last().expect("a sequence");
    }
    let stored = app.stream(&id).await.len() as u64;
    assert_eq!(sequences, (1..=stored).collect::<Vec<_>>());
    let bad = app
        .get(&format!("{base}/events?limit=1001"), Some(AUDITOR_TOKEN))
        .await;
    assert_eq!((bad.status, bad.code()), (400, Some("invalid_request")));

    // State: before the change the contact email was the login email; now it is the new one.
    let then = app
        .get(
            &format!(
                "{base}/state?at={}",
                before_change.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(then.status, 200, "{then:?}");
    assert_eq!(then.body["contact_email"]["value"], "ada@example.com");
    let now = app
        .get(
            &format!(
                "{base}/state?at={}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(now.body["contact_email"]["value"], "ada@lovelace.example");
    let before = app
        .get(
            &format!("{base}/state?at=2000-01-01T00:00:00Z"),
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(before.status, 404);

    // Verification: intact, then broken at the edited event.
    let ok = app
        .get(&format!("{base}/verification"), Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(
        ok.body,
        json!({"ok": true, "events_checked": stored, "first_broken_sequence": null})
    );
    let edited = stored - 1;
    let sql = "UPDATE events SET payload = '{\"forged\": true}' WHERE aggregate_id = $1 AND sequence = $2";
    match &testkit::Raw::of(&app.store) {
        testkit::Raw::Postgres(pool) => {
            sqlx::query(sql)
                .bind(&id)
                .bind(edited as i64)
                .execute(pool)
                .await
                .unwrap();
        }
        testkit::Raw::Sqlite(pool) => {
            sqlx::query(&sql.replace('$', "?"))
                .bind(&id)
                .bind(edited as i64)
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let broken = app
        .get(&format!("{base}/verification"), Some(AUDITOR_TOKEN))
        .await;
    assert_eq!(broken.body["ok"], false);
    assert_eq!(broken.body["first_broken_sequence"], edited);
    let unknown = app
        .get(
            "/internal/v1/audit/accounts/999999999999/verification",
            Some(AUDITOR_TOKEN),
        )
        .await;
    assert_eq!(unknown.status, 404);
    app.stop().await;
}
