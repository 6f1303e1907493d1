//! `accountd audit …` output (issue 14): human text by default, `--format json|ndjson` on every
//! subcommand, the same facts in each.

use chrono::Utc;
use gateway::audit::{self, Format, VerifyTarget};
use serde_json::Value;
use tests::{on_both_backends, Backend, PASSWORD};

on_both_backends!(every_audit_subcommand_prints_text_json_and_ndjson);

fn printed(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8 output")
}

async fn every_audit_subcommand_prints_text_json_and_ndjson(backend: Backend) {
    let app = tests::spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", PASSWORD).await;
    let account = domain::values::AccountId::parse(&id).expect("an account id");
    let service = &audit::service(&app.store, app.read.clone(), 90);

    // history
    let mut text = Vec::new();
    assert!(audit::history(service, &account, Format::Text, &mut text)
        .await
        .unwrap());
    let text = printed(text);
    assert!(text.starts_with(&format!("account {id}\n")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("1  ") && l.contains("AccountRegistered")),
        "one line per event, by sequence: {text}"
    );
    let mut json = Vec::new();
    audit::history(service, &account, Format::Json, &mut json)
        .await
        .unwrap();
    let json: Value = serde_json::from_slice(&json).expect("one JSON document");
    let events = json["events"].as_array().expect("events");
    let mut ndjson = Vec::new();
    audit::history(service, &account, Format::Ndjson, &mut ndjson)
        .await
        .unwrap();
    let lines: Vec<Value> = printed(ndjson)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(&lines, events, "ndjson holds the same events, one a line");
    assert_eq!(events[0]["type"], "AccountRegistered");
    assert!(
        text.ends_with(&format!("{} events\n", events.len())),
        "{text}"
    );

    // state
    let now = Utc::now();
    let mut text = Vec::new();
    assert!(
        audit::state(service, &account, now, Format::Text, &mut text)
            .await
            .unwrap()
    );
    let text = printed(text);
    assert!(
        text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["login_email", "ada@example.com"]),
        "one line per field: {text}"
    );
    for format in [Format::Json, Format::Ndjson] {
        let mut out = Vec::new();
        audit::state(service, &account, now, format, &mut out)
            .await
            .unwrap();
        let profile: Value = serde_json::from_slice(&out).expect("the profile as JSON");
        assert_eq!(profile["login_email"], "ada@example.com");
        assert_eq!(printed(out).lines().count() == 1, format == Format::Ndjson);
    }

    // verify, one account and all
    let mut text = Vec::new();
    let one = VerifyTarget::Account(account.clone());
    assert!(audit::verify(service, one.clone(), Format::Text, &mut text)
        .await
        .unwrap());
    assert_eq!(
        printed(text),
        format!("account {id}: ok ({} events checked)\n", events.len())
    );
    for format in [Format::Json, Format::Ndjson] {
        let mut out = Vec::new();
        assert!(audit::verify(service, one.clone(), format, &mut out)
            .await
            .unwrap());
        let report: Value = serde_json::from_slice(&out).expect("the report as JSON");
        assert_eq!(
            (report["ok"].as_bool(), report["account_id"].as_str()),
            (Some(true), Some(id.as_str()))
        );
        let mut out = Vec::new();
        assert!(audit::verify(service, VerifyTarget::All, format, &mut out)
            .await
            .unwrap());
        let report: Value = serde_json::from_slice(&out).expect("the report as JSON");
        assert_eq!(report["ok"], true);
        assert_eq!(report["broken"], serde_json::json!([]));
    }
    let mut text = Vec::new();
    audit::verify(service, VerifyTarget::All, Format::Text, &mut text)
        .await
        .unwrap();
    assert!(printed(text).contains("no broken stream"));

    // export: ndjson (the file) and the same lines as one JSON document
    let (since, until) = (
        now - chrono::Duration::hours(1),
        Utc::now() + chrono::Duration::hours(1),
    );
    let mut file = Vec::new();
    let summary = audit::export(service, since, until, Format::Ndjson, &mut file)
        .await
        .unwrap();
    let lines: Vec<Value> = printed(file)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let mut wrapped = Vec::new();
    audit::export(service, since, until, Format::Json, &mut wrapped)
        .await
        .unwrap();
    let wrapped: Value = serde_json::from_slice(&wrapped).expect("one JSON document");
    assert_eq!(
        wrapped["events"].as_array().unwrap()[..],
        lines[..lines.len() - 1]
    );
    assert_eq!(wrapped["summary"]["root_hash"], summary.root_hash.as_str());
    let mut nothing = Vec::new();
    assert!(
        audit::export(service, since, until, Format::Text, &mut nothing)
            .await
            .is_err()
    );
    app.stop().await;
}
