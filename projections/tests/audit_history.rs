//! History paging, the export and its root hash, and anchors (issue 7; SPEC §3, §5, §6), on
//! accounts written through the real write path, on PostgreSQL and on SQLite.

#[macro_use]
mod support_audit;

use std::time::Duration as StdDuration;

use chrono::{Duration, SecondsFormat};
use domain::chain::{canonical_json, GENESIS};
use domain::values::AccountId;
use projections::audit::{AuditError, DEFAULT_LIMIT};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use support_audit::*;
use testkit::TestDatabase;

on_both_backends!(
    history_pages_by_sequence_after_the_last_one_seen,
    each_event_shows_its_type_version_time_metadata_and_chain_hash,
    a_limit_outside_one_to_a_thousand_is_refused_and_the_default_is_a_hundred,
    an_unknown_account_has_no_history,
    an_export_holds_its_range_in_commit_order_and_ends_with_the_root_of_its_lines,
    an_anchor_folds_every_stream_head_into_the_documented_root_hash,
    a_later_anchor_stores_only_the_heads_that_moved,
    the_anchor_job_publishes_anchors_until_it_is_shut_down,
);

async fn history_pages_by_sequence_after_the_last_one_seen(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = env.stream_of(1, 5).await;
    env.stream_of(2, 3).await;

    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let page = env
            .audit
            .history(&id, after, Some(2))
            .await
            .unwrap()
            .unwrap();
        if page.events.is_empty() {
            break;
        }
        after = page.events.last().unwrap().sequence;
        pages.push(page.events.iter().map(|e| e.sequence).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec![1, 2], vec![3, 4], vec![5]]);
}

async fn each_event_shows_its_type_version_time_metadata_and_chain_hash(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = env.stream_of(1, 2).await;
    let rows = stored(env.store(), &id).await;

    let history = env.audit.history(&id, 0, None).await.unwrap().unwrap();
    let json = serde_json::to_value(&history).unwrap();
    let first = &json["events"][0];
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["type"], "AccountRegistered");
    assert_eq!(first["version"], "1");
    assert_eq!(first["occurred_at"], "2026-11-26T10:00:00Z");
    assert_eq!(first["payload"]["account_id"], id.as_str());
    assert_eq!(first["metadata"]["actor"], format!("account:{id}"));
    assert_eq!(first["metadata"]["request_id"], "req-7f3a");
    assert_eq!(first["metadata"]["ip"], "203.0.113.9");
    assert_eq!(first["metadata"]["user_agent"], "accountd-tests/1.0");
    assert_eq!(first["chain_hash"], rows[0].metadata["chain_hash"]);
    assert_eq!(first["metadata"].get("chain_hash"), None);
    let second = &json["events"][1];
    assert_eq!(second["type"], "ServerIpAssigned");
    assert_eq!(second["occurred_at"], "2026-11-26T10:01:00Z");
    assert_eq!(second["chain_hash"], rows[1].metadata["chain_hash"]);
    assert_ne!(first["chain_hash"], second["chain_hash"]);
}

async fn a_limit_outside_one_to_a_thousand_is_refused_and_the_default_is_a_hundred(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let id = env.stream_of(1, 105).await;

    for limit in [0, 1_001] {
        assert!(matches!(
            env.audit.history(&id, 0, Some(limit)).await,
            Err(AuditError::InvalidLimit(l)) if l == limit
        ));
    }
    let page = env.audit.history(&id, 0, None).await.unwrap().unwrap();
    assert_eq!(page.events.len(), DEFAULT_LIMIT as usize);
    let page = env
        .audit
        .history(&id, 0, Some(1_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.events.len(), 105);
    let page = env.audit.history(&id, 104, Some(1)).await.unwrap().unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [105]
    );
}

async fn an_unknown_account_has_no_history(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = env.stream_of(1, 2).await;
    let unknown = AccountId::parse("100000000999").unwrap();

    assert_eq!(env.audit.history(&unknown, 0, None).await.unwrap(), None);
    let past_the_end = env.audit.history(&id, 2, None).await.unwrap().unwrap();
    assert!(
        past_the_end.events.is_empty(),
        "a known account past its end is an empty page"
    );
}

async fn an_export_holds_its_range_in_commit_order_and_ends_with_the_root_of_its_lines(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let a = env.stream_of(1, 3).await; // 10:00, 10:01, 10:02
    env.clock.advance(Duration::minutes(10));
    let b = env.stream_of(2, 2).await; // 10:12, 10:13
    env.clock.advance(Duration::minutes(1));
    env.exec(
        &a,
        domain::AccountCommand::ReleaseServerIp {
            instance_id: "i-1001".into(),
        },
    )
    .await; // 10:14

    let since = support_audit::t0() + Duration::minutes(1);
    let until = support_audit::t0() + Duration::minutes(14);
    let mut out = Vec::new();
    let summary = env.audit.export(since, until, &mut out).await.unwrap();

    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let exported: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<(String, u64)> = exported
        .iter()
        .map(|e| {
            (
                e["account_id"].as_str().unwrap().to_owned(),
                e["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (a.to_string(), 2),
            (a.to_string(), 3),
            (b.to_string(), 1),
            (b.to_string(), 2)
        ],
        "[since, until) in commit order"
    );
    for (line, value) in lines.iter().zip(&exported) {
        assert_eq!(*line, canonical_json(value), "each line is canonical JSON");
    }

    let mut root = GENESIS.to_owned();
    for line in &lines[..lines.len() - 1] {
        root = hex::encode(Sha256::digest(format!("{root}{line}")));
    }
    assert_eq!(summary.events, 4);
    assert_eq!(summary.root_hash, root);
    let last: Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(
        last,
        json!({
            "events": 4,
            "root_hash": root,
            "since": since.to_rfc3339_opts(SecondsFormat::Micros, true),
            "until": until.to_rfc3339_opts(SecondsFormat::Micros, true),
        })
    );

    assert!(matches!(
        env.audit.export(until, since, &mut Vec::new()).await,
        Err(AuditError::InvalidRange)
    ));
}

/// The heads of every account stream, straight from the table, as the root hash spells them.
async fn expected_root(env: &Env, ids: &[&AccountId]) -> (String, u64) {
    let mut heads = Vec::new();
    for id in ids {
        let rows = stored(env.store(), id).await;
        let last = rows.last().unwrap();
        heads.push(json!({
            "account_id": id.as_str(),
            "chain_hash": last.metadata["chain_hash"],
            "sequence": last.sequence,
        }));
    }
    heads.sort_by(|a, b| a["account_id"].as_str().cmp(&b["account_id"].as_str()));
    let events = heads.iter().map(|h| h["sequence"].as_u64().unwrap()).sum();
    let text = canonical_json(&Value::Array(heads));
    (hex::encode(Sha256::digest(text.as_bytes())), events)
}

async fn an_anchor_folds_every_stream_head_into_the_documented_root_hash(db: TestDatabase) {
    let env = Env::new(db).await;
    let a = env.stream_of(1, 4).await;
    let b = env.stream_of(2, 2).await;
    let c = env.stream_of(3, 3).await;

    let anchor = env.audit.create_anchor(env.now()).await.unwrap();

    let (root, events) = expected_root(&env, &[&a, &b, &c]).await;
    assert_eq!(anchor.root_hash, root);
    assert_eq!((anchor.streams, anchor.events), (3, events));
    assert_eq!(
        env.audit.latest_anchor().await.unwrap(),
        Some(anchor.clone())
    );
    assert!(env.audit.anchor_is_intact(&anchor).await.unwrap());
    assert_eq!(
        anchor.message(),
        json!({
            "anchor_id": anchor.id,
            "created_at": env.now().to_rfc3339_opts(SecondsFormat::Micros, true),
            "root_hash": root,
            "streams": 3,
            "events": 9,
        })
    );
}

async fn a_later_anchor_stores_only_the_heads_that_moved(db: TestDatabase) {
    let env = Env::new(db).await;
    let a = env.stream_of(1, 2).await;
    let b = env.stream_of(2, 2).await;
    let first = env.audit.create_anchor(env.now()).await.unwrap();
    env.exec(
        &b,
        domain::AccountCommand::ReleaseServerIp {
            instance_id: "i-2001".into(),
        },
    )
    .await;
    let c = env.stream_of(3, 2).await;

    let second = env.audit.create_anchor(env.now()).await.unwrap();

    let moved = env.audit.anchored_heads(second.id).await.unwrap();
    let moved_by_second: Vec<&str> = moved
        .iter()
        .filter(|(_, h)| h.anchor_id == second.id)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(moved_by_second, [b.as_str(), c.as_str()]);
    assert_eq!(moved[a.as_str()].anchor_id, first.id);
    let (root, _) = expected_root(&env, &[&a, &b, &c]).await;
    assert_eq!(second.root_hash, root);
    assert_ne!(first.root_hash, second.root_hash);
    assert!(env.audit.anchor_is_intact(&first).await.unwrap());
    assert!(env.audit.anchor_is_intact(&second).await.unwrap());

    let third = env.audit.create_anchor(env.now()).await.unwrap();
    assert_eq!(
        third.root_hash, second.root_hash,
        "nothing moved, same root"
    );
}

async fn the_anchor_job_publishes_anchors_until_it_is_shut_down(db: TestDatabase) {
    let env = Env::new(db).await;
    let a = env.stream_of(1, 3).await;
    let (published, mut received) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let sink = move |anchor: Value| {
        let published = published.clone();
        async move { published.send(anchor).map_err(domain::PortError::new) }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let audit = env.audit.clone();
    let job = tokio::spawn(async move {
        audit
            .run_anchors(StdDuration::from_millis(20), &sink, async {
                let _ = stopped.await;
            })
            .await
    });

    let deadline = StdDuration::from_secs(20);
    let first = tokio::time::timeout(deadline, received.recv())
        .await
        .unwrap()
        .unwrap();
    env.exec(
        &a,
        domain::AccountCommand::ReleaseServerIp {
            instance_id: "i-1001".into(),
        },
    )
    .await;
    let (root, _) = expected_root(&env, &[&a]).await;
    // Anchors keep coming; one of them covers the new event.
    let later = loop {
        let anchor = tokio::time::timeout(deadline, received.recv())
            .await
            .unwrap()
            .unwrap();
        if anchor["root_hash"] == root {
            break anchor;
        }
    };
    assert!(later["anchor_id"].as_i64() > first["anchor_id"].as_i64());
    let stored = env.audit.latest_anchor().await.unwrap().unwrap();
    assert!(stored.id >= later["anchor_id"].as_i64().unwrap());

    stop.send(()).unwrap();
    tokio::time::timeout(deadline, job)
        .await
        .expect("the job stops")
        .unwrap();
}
