//! Internal routes (SPEC §3 "Internal"): service tokens with roles, the unmasked profile for
//! support, lookups by mobile, email and server IP, and server assignments from compute.

use serde_json::{json, Value};
use tests::{
    assert_problem, on_both_backends, poll, spawn_app, Backend, TestApp, AUDITOR_TOKEN,
    COMPUTE_TOKEN, EVENTUALLY, NOTIFIER_TOKEN, PASSWORD, SUPPORT_TOKEN,
};

/// Waits until `GET path` (support) answers 200 with a body for which `wanted` holds.
async fn support_sees(app: &TestApp, path: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    poll(&format!("{path} as support"), EVENTUALLY, || async {
        let answer = app.get(path, Some(SUPPORT_TOKEN)).await;
        (answer.status == 200 && wanted(&answer.body)).then_some(answer.body)
    })
    .await
}

fn ids(ids: &[&str]) -> Value {
    json!({"account_ids": ids})
}

async fn assign(app: &TestApp, account: &str, instance: &str, ip: &str) -> tests::Answer {
    app.post(
        &format!("/internal/v1/accounts/{account}/servers"),
        Some(COMPUTE_TOKEN),
        json!({"instance_id": instance, "public_ip": ip}),
    )
    .await
}

async fn internal_routes_check_roles_show_unmasked_profiles_look_accounts_up_and_keep_servers(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let mobile_account = app.sign_up_by_mobile("13800138000").await;
    let email_account = app.sign_up("ops@example.com", PASSWORD).await;
    let profile_path = format!("/internal/v1/accounts/{mobile_account}");

    // Roles.
    assert_problem(&app.get(&profile_path, None).await, 401, "unauthenticated");
    assert_problem(
        &app.get(&profile_path, Some("not-a-service-token-at-all"))
            .await,
        401,
        "unauthenticated",
    );
    let session = app.sign_in("ops@example.com", PASSWORD).await;
    assert_problem(
        &app.get(&profile_path, Some(&session)).await,
        401,
        "unauthenticated",
    );
    for token in [COMPUTE_TOKEN, NOTIFIER_TOKEN, AUDITOR_TOKEN] {
        assert_problem(&app.get(&profile_path, Some(token)).await, 403, "forbidden");
        let lookup = app
            .get("/internal/v1/lookup/email/ops%40example.com", Some(token))
            .await;
        assert_problem(&lookup, 403, "forbidden");
    }
    let as_support = assign(&app, &mobile_account, "ins-0", "203.0.113.1").await;
    assert_eq!(as_support.status, 201, "compute may assign: {as_support:?}");
    let wrong_role = app
        .post(
            &format!("/internal/v1/accounts/{mobile_account}/servers"),
            Some(SUPPORT_TOKEN),
            json!({"instance_id": "ins-x", "public_ip": "203.0.113.99"}),
        )
        .await;
    assert_problem(&wrong_role, 403, "forbidden");
    let anonymous = app
        .send(
            "DELETE",
            &format!("/internal/v1/accounts/{mobile_account}/servers/ins-0"),
            None,
            None,
        )
        .await;
    assert_problem(&anonymous, 401, "unauthenticated");
    let notify = app
        .post(
            &format!("/internal/v1/accounts/{mobile_account}/notifications"),
            Some(SUPPORT_TOKEN),
            json!({"kind": "event", "subject": "Hello", "body": "World"}),
        )
        .await;
    assert_problem(&notify, 403, "forbidden");

    // The unmasked profile, once the read model has the account.
    let profile = support_sees(&app, &profile_path, |p| {
        p["servers"].as_array().is_some_and(|s| s.len() == 1)
    })
    .await;
    assert_eq!(profile["account_id"], mobile_account.as_str());
    assert_eq!(profile["login_mobile"], "+8613800138000");
    assert_eq!(
        profile["recovery_mobile"],
        json!({"value": "+8613800138000", "verified": true})
    );
    assert_eq!(
        profile["contact_mobile"],
        json!({"value": "+8613800138000", "verified": true})
    );
    assert_eq!(profile["servers"][0]["instance_id"], "ins-0");
    assert_eq!(profile["servers"][0]["public_ip"], "203.0.113.1");
    assert!(
        profile["servers"][0]["assigned_at"].is_string(),
        "{profile}"
    );
    assert_problem(
        &app.get("/internal/v1/accounts/555555555555", Some(SUPPORT_TOKEN))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &app.get("/internal/v1/accounts/12345", Some(SUPPORT_TOKEN))
            .await,
        404,
        "not_found",
    );

    // The audit routes: role auditor; `limit` 1 to 1000 and `at` RFC 3339, else 400; an
    // unknown account 404.
    let events = format!("/internal/v1/audit/accounts/{mobile_account}/events");
    assert_problem(
        &app.get(&events, Some(SUPPORT_TOKEN)).await,
        403,
        "forbidden",
    );
    for query in ["?limit=0", "?limit=1001", "?limit=ten", "?after=-1"] {
        let refused = app
            .get(&format!("{events}{query}"), Some(AUDITOR_TOKEN))
            .await;
        assert_problem(&refused, 400, "invalid_request");
    }
    let state = format!("/internal/v1/audit/accounts/{mobile_account}/state?at=yesterday");
    assert_problem(
        &app.get(&state, Some(AUDITOR_TOKEN)).await,
        400,
        "invalid_request",
    );
    for path in [
        "/internal/v1/audit/accounts/555555555555/events",
        "/internal/v1/audit/accounts/555555555555/verification",
    ] {
        assert_problem(&app.get(path, Some(AUDITOR_TOKEN)).await, 404, "not_found");
    }

    // Lookups: path values percent-decoded, `+` literal.
    let expected = ids(&[&mobile_account]);
    support_sees(&app, "/internal/v1/lookup/mobile/%2B8613800138000", |b| {
        *b == expected
    })
    .await;
    support_sees(&app, "/internal/v1/lookup/mobile/+8613800138000", |b| {
        *b == expected
    })
    .await;
    let nobody = app
        .get(
            "/internal/v1/lookup/mobile/%2B8613700137000",
            Some(SUPPORT_TOKEN),
        )
        .await;
    assert_eq!((nobody.status, nobody.body), (200, ids(&[])));
    let expected = ids(&[&email_account]);
    support_sees(&app, "/internal/v1/lookup/email/ops%40example.com", |b| {
        *b == expected
    })
    .await;
    support_sees(&app, "/internal/v1/lookup/email/ops@example.com", |b| {
        *b == expected
    })
    .await;
    // The domain is compared lower-cased, the local part exactly.
    support_sees(&app, "/internal/v1/lookup/email/ops@EXAMPLE.com", |b| {
        *b == expected
    })
    .await;
    let other_local = app
        .get(
            "/internal/v1/lookup/email/OPS@example.com",
            Some(SUPPORT_TOKEN),
        )
        .await;
    assert_eq!((other_local.status, other_local.body), (200, ids(&[])));
    let bad = app
        .get(
            "/internal/v1/lookup/server-ip/not-an-ip",
            Some(SUPPORT_TOKEN),
        )
        .await;
    assert_problem(&bad, 400, "invalid_request");

    // Servers: an instance id is used once; an IP belongs to one account at a time.
    assert_eq!(
        assign(&app, &email_account, "ins-6", "2001:db8::7")
            .await
            .status,
        201
    );
    assert_problem(
        &assign(&app, &email_account, "ins-0", "203.0.113.2").await,
        409,
        "conflict",
    );
    assert_problem(
        &assign(&app, &email_account, "ins-7", "203.0.113.1").await,
        409,
        "conflict",
    );
    assert_problem(
        &assign(&app, &mobile_account, "ins-6", "203.0.113.3").await,
        409,
        "conflict",
    );
    assert_problem(
        &assign(&app, "555555555555", "ins-8", "203.0.113.4").await,
        404,
        "not_found",
    );
    assert_problem(
        &assign(&app, &email_account, "ins-9", "224.0.0.1").await,
        400,
        "invalid_request",
    );
    support_sees(&app, "/internal/v1/lookup/server-ip/203.0.113.1", |b| {
        *b == ids(&[&mobile_account])
    })
    .await;
    support_sees(
        &app,
        "/internal/v1/lookup/server-ip/2001%3Adb8%3A%3A7",
        |b| *b == ids(&[&email_account]),
    )
    .await;
    // Another spelling of the same address finds the same server.
    support_sees(&app, "/internal/v1/lookup/server-ip/2001:DB8:0::7", |b| {
        *b == ids(&[&email_account])
    })
    .await;
    support_sees(
        &app,
        "/internal/v1/lookup/server-ip/%3A%3Affff%3A203.0.113.1",
        |b| *b == ids(&[&mobile_account]),
    )
    .await;

    let release = format!("/internal/v1/accounts/{mobile_account}/servers/ins-0");
    assert_eq!(app.delete(&release, Some(COMPUTE_TOKEN)).await.status, 204);
    assert_problem(
        &app.delete(&release, Some(COMPUTE_TOKEN)).await,
        404,
        "not_found",
    );
    let unknown_instance = format!("/internal/v1/accounts/{mobile_account}/servers/ins-404");
    assert_problem(
        &app.delete(&unknown_instance, Some(COMPUTE_TOKEN)).await,
        404,
        "not_found",
    );
    let unknown_account = "/internal/v1/accounts/555555555555/servers/ins-0";
    assert_problem(
        &app.delete(unknown_account, Some(COMPUTE_TOKEN)).await,
        404,
        "not_found",
    );
    support_sees(&app, "/internal/v1/lookup/server-ip/203.0.113.1", |b| {
        *b == ids(&[])
    })
    .await;
    // The released IP may go to another account; the released instance id never comes back.
    assert_eq!(
        assign(&app, &email_account, "ins-10", "203.0.113.1")
            .await
            .status,
        201
    );
    assert_problem(
        &assign(&app, &mobile_account, "ins-0", "203.0.113.5").await,
        409,
        "conflict",
    );
    support_sees(&app, "/internal/v1/lookup/server-ip/203.0.113.1", |b| {
        *b == ids(&[&email_account])
    })
    .await;
    support_sees(&app, &profile_path, |p| p["servers"] == json!([])).await;
    app.stop().await;
}
on_both_backends!(
    internal_routes_check_roles_show_unmasked_profiles_look_accounts_up_and_keep_servers
);
