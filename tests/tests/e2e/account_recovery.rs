//! Finding an account again (SPEC §2 "Enumeration safety", §3 `POST /v1/account-recovery`): by
//! mobile (202, the same answer always; the account information goes only to a known mobile),
//! by account ID or server IP (a masked mobile, confirmed with the full number), and decoys of
//! the same shape for anything unknown.

use serde_json::{json, Value};
use tests::{
    assert_problem, on_both_backends, poll, spawn_app, Backend, TestApp, COMPUTE_TOKEN, EVENTUALLY,
    PASSWORD, SUPPORT_TOKEN,
};

/// Waits until the support lookup `path` lists exactly `ids` (the read models lag a command).
async fn lookup_shows(app: &TestApp, path: &str, ids: &[&str]) {
    let expected = json!({"account_ids": ids});
    poll(&format!("{path} to list {ids:?}"), EVENTUALLY, || async {
        let answer = app.get(path, Some(SUPPORT_TOKEN)).await;
        (answer.status == 200 && answer.body == expected).then_some(())
    })
    .await;
}

async fn recovery_by_mobile_answers_alike_and_sends_the_account_information_only_to_a_known_mobile(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let id = app.sign_up_by_mobile("13800138000").await;
    lookup_shows(&app, "/internal/v1/lookup/mobile/%2B8613800138000", &[&id]).await;

    let unknown = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "mobile", "mobile": "13700137000"}),
        )
        .await;
    let known = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "mobile", "mobile": "+86 138 0013 8000"}),
        )
        .await;
    assert_eq!(known.status, 202, "{known:?}");
    assert_eq!(
        (unknown.status, &unknown.body),
        (known.status, &known.body),
        "the same answer"
    );

    let sent = poll("AccountInfoSent on the account", EVENTUALLY, || async {
        let events = app.stream(&id).await;
        events
            .into_iter()
            .find(|(t, _)| t == "AccountInfoSent")
            .map(|(_, p)| p)
    })
    .await;
    assert_eq!(sent["mobile"], "+8613800138000", "{sent}");
    assert!(
        sent.to_string().contains(&id),
        "the message names the account: {sent}"
    );
    assert!(app.count_in_stream(&id, "AccountRecoveryRequested").await >= 1);
    // Nothing for the unknown mobile (its lookup ran first and found nothing).
    let all_sent = app.events_of_type("AccountInfoSent").await;
    assert_eq!(all_sent.len(), 1, "{all_sent:?}");
    assert!(
        !all_sent[0].1.to_string().contains("13700137000"),
        "{all_sent:?}"
    );

    let malformed = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "mobile", "mobile": "not a number"}),
        )
        .await;
    assert_problem(&malformed, 400, "invalid_request");
    app.stop().await;
}
on_both_backends!(
    recovery_by_mobile_answers_alike_and_sends_the_account_information_only_to_a_known_mobile
);

async fn recovery_by_account_id_or_server_ip_masks_the_mobile_and_only_the_full_number_sends_the_information(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let id = app.sign_up_by_mobile("13800138000").await;

    let started = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "account_id", "account_id": id}),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    assert_eq!(started.body["masked_mobile"], "+86 138****8000");
    // Recorded on the account after the answer (so a real recovery answers as fast as a decoy).
    poll("AccountRecoveryRequested", EVENTUALLY, || async {
        (app.count_in_stream(&id, "AccountRecoveryRequested").await == 1).then_some(())
    })
    .await;
    let recovery = started.body["recovery_id"]
        .as_str()
        .expect("a recovery id")
        .to_owned();
    let confirm = format!("/v1/account-recovery/{recovery}/confirmation");

    let wrong = app
        .post(&confirm, None, json!({"mobile": "13800138001"}))
        .await;
    assert_eq!(wrong.status, 202, "{wrong:?}");
    // Checked after the answer.
    poll("the failed confirmation", EVENTUALLY, || async {
        (app.count_in_stream(&id, "AccountRecoveryConfirmationFailed")
            .await
            == 1)
            .then_some(())
    })
    .await;
    assert_eq!(app.count_in_stream(&id, "AccountInfoSent").await, 0);

    let right = app
        .post(&confirm, None, json!({"mobile": "+86 138 0013 8000"}))
        .await;
    assert_eq!(
        (right.status, &right.body),
        (wrong.status, &wrong.body),
        "202 always, the same body"
    );
    poll(
        "AccountInfoSent after the right number",
        EVENTUALLY,
        || async { (app.count_in_stream(&id, "AccountInfoSent").await == 1).then_some(()) },
    )
    .await;
    // Five tries per recovery: after five wrong numbers the right one sends nothing.
    let started = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "account_id", "account_id": id}),
        )
        .await;
    let tried = started.body["recovery_id"]
        .as_str()
        .expect("a recovery id")
        .to_owned();
    let tried = format!("/v1/account-recovery/{tried}/confirmation");
    for last_digit in 1..=5 {
        let wrong = app
            .post(
                &tried,
                None,
                json!({"mobile": format!("1380013800{last_digit}")}),
            )
            .await;
        assert_eq!(wrong.status, 202, "{wrong:?}");
    }
    poll("five more failed confirmations", EVENTUALLY, || async {
        (app.count_in_stream(&id, "AccountRecoveryConfirmationFailed")
            .await
            == 6)
            .then_some(())
    })
    .await;
    let too_late = app
        .post(&tried, None, json!({"mobile": "13800138000"}))
        .await;
    assert_eq!(too_late.status, 202, "{too_late:?}");
    // The check runs after the answer and leaves no event on a closed recovery: wait for it to
    // have ended.
    app.settled().await;
    assert_eq!(app.count_in_stream(&id, "AccountInfoSent").await, 1);

    // A confirmed recovery is closed.
    let again = app
        .post(&confirm, None, json!({"mobile": "+8613800138000"}))
        .await;
    assert_eq!(again.status, 202, "{again:?}");
    app.settled().await;
    assert_eq!(app.count_in_stream(&id, "AccountInfoSent").await, 1);

    // By the public IP of one of the account's servers.
    let assigned = app
        .post(
            &format!("/internal/v1/accounts/{id}/servers"),
            Some(COMPUTE_TOKEN),
            json!({"instance_id": "ins-1", "public_ip": "203.0.113.7"}),
        )
        .await;
    assert_eq!(assigned.status, 201, "{assigned:?}");
    lookup_shows(&app, "/internal/v1/lookup/server-ip/203.0.113.7", &[&id]).await;
    let started = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "server_ip", "ip": "203.0.113.7"}),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    assert_eq!(started.body["masked_mobile"], "+86 138****8000");
    let recovery = started.body["recovery_id"].as_str().expect("a recovery id");
    let right = app
        .post(
            &format!("/v1/account-recovery/{recovery}/confirmation"),
            None,
            json!({"mobile": "13800138000"}),
        )
        .await;
    assert_eq!(right.status, 202, "{right:?}");
    app.settled().await;
    assert_eq!(app.count_in_stream(&id, "AccountInfoSent").await, 2);

    // A released IP is unknown: recovering by it never reaches the account.
    let released = app
        .delete(
            &format!("/internal/v1/accounts/{id}/servers/ins-1"),
            Some(COMPUTE_TOKEN),
        )
        .await;
    assert_eq!(released.status, 204, "{released:?}");
    let started = app
        .post(
            "/v1/account-recovery",
            None,
            json!({"method": "server_ip", "ip": "203.0.113.7"}),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    assert!(crate::is_masked_chinese_mobile(
        started.body["masked_mobile"].as_str().unwrap_or_default()
    ));
    let recovery = started.body["recovery_id"].as_str().expect("a recovery id");
    let right = app
        .post(
            &format!("/v1/account-recovery/{recovery}/confirmation"),
            None,
            json!({"mobile": "13800138000"}),
        )
        .await;
    assert_eq!(right.status, 202, "{right:?}");
    app.settled().await;
    assert_eq!(app.count_in_stream(&id, "AccountInfoSent").await, 2);
    app.stop().await;
}
on_both_backends!(recovery_by_account_id_or_server_ip_masks_the_mobile_and_only_the_full_number_sends_the_information);

async fn unknown_account_ids_and_server_ips_get_stable_decoys_that_never_record_anything(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    // An account without a verified recovery mobile gets a decoy too.
    let email_only = app.sign_up("ada@example.com", PASSWORD).await;
    let account_events = || async {
        app.all_events()
            .await
            .into_iter()
            .filter(|(kind, ..)| kind == "Account")
            .map(|(_, id, t, _)| (id, t))
            .collect::<Vec<_>>()
    };
    let mut recoveries = Vec::new();
    for body in [
        json!({"method": "account_id", "account_id": "555555555555"}),
        json!({"method": "account_id", "account_id": email_only}),
        json!({"method": "server_ip", "ip": "198.51.100.23"}),
        json!({"method": "server_ip", "ip": "2001:db8::23"}),
    ] {
        let first = app.post("/v1/account-recovery", None, body.clone()).await;
        let second = app.post("/v1/account-recovery", None, body.clone()).await;
        assert_eq!(
            (first.status, second.status),
            (200, 200),
            "{first:?} {second:?}"
        );
        let masked = first.body["masked_mobile"]
            .as_str()
            .expect("a masked mobile");
        assert!(
            crate::is_masked_chinese_mobile(masked),
            "decoy shape +86 1dd****dddd: {masked}"
        );
        assert_eq!(
            second.body["masked_mobile"], masked,
            "a decoy is stable across calls: {body}"
        );
        assert_ne!(first.body["recovery_id"], second.body["recovery_id"]);
        assert_eq!(
            first.body.as_object().map(|o| o.len()),
            Some(2),
            "only recovery_id and masked_mobile: {first:?}"
        );
        for answer in [first, second] {
            recoveries.push(
                answer.body["recovery_id"]
                    .as_str()
                    .expect("a recovery id")
                    .to_owned(),
            );
        }
    }

    let before = account_events().await;
    for (recovery, mobile) in recoveries
        .iter()
        .zip(["13800138000", "13900139000"].iter().cycle())
    {
        let path = format!("/v1/account-recovery/{recovery}/confirmation");
        let confirmed = app.post(&path, None, json!({"mobile": mobile})).await;
        assert_eq!(confirmed.status, 202, "{confirmed:?}");
    }
    let unknown_recovery = app
        .post(
            "/v1/account-recovery/not-a-recovery/confirmation",
            None,
            json!({"mobile": "13800138000"}),
        )
        .await;
    assert_eq!(unknown_recovery.status, 202, "{unknown_recovery:?}");
    // Confirmations are checked after the answer: wait for those checks to have ended.
    app.settled().await;
    assert_eq!(
        account_events().await,
        before,
        "confirming a decoy records nothing on any account"
    );
    assert_eq!(
        app.events_of_type("AccountInfoSent").await,
        Vec::<(String, Value)>::new()
    );

    for body in [
        json!({"method": "account_id", "account_id": "12345"}),
        json!({"method": "account_id", "account_id": "000000000000"}),
        json!({"method": "account_id", "account_id": "abcdefghijkl"}),
        json!({"method": "server_ip", "ip": "300.1.2.3"}),
        json!({"method": "server_ip", "ip": "not-an-ip"}),
        json!({"method": "server_ip", "ip": "224.0.0.1"}),
        json!({"method": "server_ip", "ip": " 198.51.100.23"}),
        json!({"method": "carrier_pigeon"}),
    ] {
        let refused = app.post("/v1/account-recovery", None, body.clone()).await;
        assert_problem(&refused, 400, "invalid_request");
    }
    app.stop().await;
}
on_both_backends!(unknown_account_ids_and_server_ips_get_stable_decoys_that_never_record_anything);
