//! The contract of each store trait of the read side (`projections::store`): the same test
//! body runs against the PostgreSQL and the SQLite implementation, through the handles
//! `ReadStore::open` builds. A query added to a store gets its case here.

#[macro_use]
mod support;

use chrono::{DateTime, Duration, Utc};
use domain::stored::Checkpoint;
use projections::audit::{Anchor, StreamHead};
use projections::profile::{ProfileRow, ServerRow, Tables};
use projections::sessions::Session;
use projections::ReadStore;
use support::{on_both_backends, t0};
use testkit::TestDatabase;

on_both_backends!(
    the_profile_store_answers_each_lookup_from_the_stored_facts,
    the_reminder_query_finds_passwords_set_before_the_instant_not_yet_reminded,
    the_session_store_finds_only_live_sessions_and_revokes_them,
    a_person_lists_their_live_sessions_and_ends_only_their_own,
    a_live_session_comes_with_its_accounts_stream_head,
    a_client_is_seen_by_a_session_of_the_account_from_the_same_ip_and_agent_lately,
    a_checkpoint_moves_only_from_where_it_is_expected,
    a_projection_transaction_is_all_or_nothing,
    a_rebuild_swaps_the_copies_in_and_sets_the_checkpoint,
    the_anchor_store_keeps_every_anchors_heads,
    the_relay_checkpoint_moves_only_from_where_it_is_expected_and_resets,
);

async fn open(db: &TestDatabase) -> ReadStore {
    ReadStore::open(&db.url).await.expect("open the read store")
}

fn row(id: &str, sequence: i64) -> ProfileRow {
    ProfileRow {
        account_id: id.to_owned(),
        last_sequence: sequence,
        registered_at: t0(),
        login_email: None,
        login_mobile: None,
        contact_mobile: None,
        contact_mobile_verified: false,
        contact_email: None,
        contact_email_verified: false,
        recovery_mobile: None,
        recovery_email: None,
        pending_recovery_mobile: None,
        pending_recovery_email: None,
        pending_login_email: None,
        password_set: false,
        password_changed_at: None,
        reminded_for: None,
        reset_token_digest: None,
        reset_token_expires_at: None,
        servers: Vec::new(),
    }
}

fn server(account_id: &str, instance_id: &str, ip: &str, minutes: i64) -> ServerRow {
    ServerRow {
        account_id: account_id.to_owned(),
        instance_id: instance_id.to_owned(),
        public_ip: ip.to_owned(),
        assigned_at: t0() + Duration::minutes(minutes),
    }
}

/// Saves `rows` in `tables` in one committed transaction.
async fn save(read: &ReadStore, tables: Tables, rows: &[ProfileRow]) {
    let mut tx = read.projections().begin().await.unwrap();
    tx.save(tables, &rows.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

const A: &str = "100000000001";
const B: &str = "100000000002";
const C: &str = "100000000003";

async fn the_profile_store_answers_each_lookup_from_the_stored_facts(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.profiles();
    let mut a = row(A, 7);
    a.login_email = Some("ada@example.com".into());
    a.recovery_mobile = Some("+6591234567".into());
    a.reset_token_digest = Some("ab".repeat(32));
    a.servers = vec![
        server(A, "ins-2", "203.0.113.2", 2),
        server(A, "ins-1", "203.0.113.1", 1),
    ];
    let mut b = row(B, 3);
    b.login_mobile = Some("+6591234567".into());
    b.servers = vec![server(B, "ins-3", "203.0.113.1", 3)];
    let mut c = row(C, 1);
    c.pending_login_email = Some("cy@example.com".into());
    save(&read, Tables::LIVE, &[a.clone(), b, c]).await;

    let stored = store.profile_row(A).await.unwrap().expect("a row");
    a.servers.reverse(); // servers come back by assignment time
    assert_eq!(stored, a);
    assert_eq!(store.profile_row("100000000009").await.unwrap(), None);
    // Recovery or login mobile, sorted by account.
    assert_eq!(
        store.accounts_by_mobile("+6591234567").await.unwrap(),
        [A, B]
    );
    assert_eq!(
        store
            .accounts_by_login_email("ada@example.com")
            .await
            .unwrap(),
        [A]
    );
    assert!(store
        .accounts_by_login_email("cy@example.com")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.accounts_by_server_ip("203.0.113.1").await.unwrap(),
        [A, B]
    );
    assert_eq!(
        store
            .account_by_reset_token(&"ab".repeat(32))
            .await
            .unwrap(),
        Some(A.to_owned())
    );
    assert_eq!(store.account_by_reset_token("cd").await.unwrap(), None);
    assert_eq!(store.profile_sequence(A).await.unwrap(), 7);
    assert_eq!(store.profile_sequence("100000000009").await.unwrap(), 0);
}

async fn the_reminder_query_finds_passwords_set_before_the_instant_not_yet_reminded(
    db: TestDatabase,
) {
    let read = open(&db).await;
    let with_password = |id: &str, days: i64| {
        let mut r = row(id, 1);
        r.password_set = true;
        r.password_changed_at = Some(t0() + Duration::days(days));
        r
    };
    let older = with_password(A, 0);
    let newer = with_password(B, 1);
    let mut reminded = with_password(C, 0);
    reminded.reminded_for = reminded.password_changed_at;
    save(&read, Tables::LIVE, &[newer, older, reminded]).await;
    let due = |before: DateTime<Utc>, limit: i64| {
        let read = read.clone();
        async move {
            read.profiles()
                .passwords_changed_before(before, limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        due(t0() + Duration::days(2), 10).await,
        [A, B],
        "oldest first"
    );
    assert_eq!(due(t0() + Duration::days(2), 1).await, [A]);
    assert_eq!(
        due(t0() + Duration::days(1), 10).await,
        [A],
        "strictly before"
    );
    assert!(due(t0(), 10).await.is_empty());
}

async fn the_session_store_finds_only_live_sessions_and_revokes_them(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.sessions();
    let session = |id: &str, account: &str| Session {
        session_id: id.to_owned(),
        account_id: account.to_owned(),
        created_at: t0(),
        expires_at: t0() + Duration::hours(12),
        last_used_at: None,
        ip: None,
        user_agent: None,
    };
    for (hash, s) in [
        ("h1", session("s1", A)),
        ("h2", session("s2", A)),
        ("h3", session("s3", A)),
        ("h4", session("s4", B)),
    ] {
        store.create(hash, &s).await.unwrap();
    }
    assert_eq!(
        store.active("h1", t0()).await.unwrap().map(|a| a.session),
        Some(session("s1", A))
    );
    assert!(store.active("nope", t0()).await.unwrap().is_none());
    let expiry = t0() + Duration::hours(12);
    assert!(
        store.active("h1", expiry).await.unwrap().is_none(),
        "expired"
    );
    store.revoke("s1", t0()).await.unwrap();
    assert!(store.active("h1", t0()).await.unwrap().is_none(), "revoked");
    store.revoke_all_but(A, "s2", t0()).await.unwrap();
    assert!(store.active("h2", t0()).await.unwrap().is_some(), "kept");
    assert!(store.active("h3", t0()).await.unwrap().is_none());
    assert!(
        store.active("h4", t0()).await.unwrap().is_some(),
        "another account's"
    );
}

async fn a_live_session_comes_with_its_accounts_stream_head(db: TestDatabase) {
    let read = open(&db).await;
    let executor = testkit::service::executor(&db.store);
    let id = testkit::service::register_by_mobile(&executor, 1).await;
    let other = testkit::service::register_by_mobile(&executor, 2).await;
    let session = |account: &str| Session {
        session_id: format!("s-{account}"),
        account_id: account.to_owned(),
        created_at: t0(),
        expires_at: t0() + Duration::hours(12),
        last_used_at: None,
        ip: None,
        user_agent: None,
    };
    read.sessions()
        .create("h1", &session(id.as_str()))
        .await
        .unwrap();
    read.sessions()
        .create("h0", &session("100000099999"))
        .await
        .unwrap();
    let head = |hash: &'static str| {
        let read = read.clone();
        async move {
            read.sessions()
                .active(hash, t0())
                .await
                .unwrap()
                .unwrap()
                .account_head
        }
    };
    let written = testkit::streams::stream_rows(&db.store, id.as_str())
        .await
        .len() as i64;
    assert!(written > 0);
    assert_eq!(head("h1").await, written);
    for n in 0..3 {
        executor
            .execute::<domain::Account>(
                id.as_str(),
                testkit::service::assign_server(n),
                &commands::CommandContext::system(),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        head("h1").await,
        written + 3,
        "follows the account's own stream"
    );
    executor
        .execute::<domain::Account>(
            other.as_str(),
            testkit::service::assign_server(9),
            &commands::CommandContext::system(),
        )
        .await
        .unwrap();
    assert_eq!(head("h1").await, written + 3, "not another account's");
    assert_eq!(head("h0").await, 0, "an account without events");
}

async fn a_person_lists_their_live_sessions_and_ends_only_their_own(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.sessions();
    let session = |id: &str, account: &str, minutes: i64| Session {
        session_id: id.to_owned(),
        account_id: account.to_owned(),
        created_at: t0() + Duration::minutes(minutes),
        expires_at: t0() + Duration::hours(12),
        last_used_at: Some(t0() + Duration::minutes(minutes)),
        ip: Some("203.0.113.7".to_owned()),
        user_agent: Some(format!("agent-{id}")),
    };
    for (hash, s) in [
        ("h1", session("s1", A, 0)),
        ("h2", session("s2", A, 1)),
        ("h3", session("s3", B, 2)),
    ] {
        store.create(hash, &s).await.unwrap();
    }
    let now = t0() + Duration::minutes(5);
    let ids = |list: Vec<Session>| list.into_iter().map(|s| s.session_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.live(A, now).await.unwrap()),
        ["s2", "s1"],
        "newest first"
    );
    assert_eq!(store.live(A, now).await.unwrap()[1], session("s1", A, 0));

    // A use is written unless one was written after `unless_after`.
    store
        .touch("s1", now, now - Duration::minutes(1))
        .await
        .unwrap();
    let used = |list: Vec<Session>| {
        list.iter()
            .find(|s| s.session_id == "s1")
            .unwrap()
            .last_used_at
    };
    assert_eq!(used(store.live(A, now).await.unwrap()), Some(now));
    let soon = now + Duration::seconds(10);
    store
        .touch("s1", soon, soon - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        used(store.live(A, now).await.unwrap()),
        Some(now),
        "at most once a minute"
    );

    assert!(
        !store.revoke_own(A, "s3", now).await.unwrap(),
        "another account's"
    );
    assert!(store.active("h3", now).await.unwrap().is_some());
    assert!(store.revoke_own(A, "s2", now).await.unwrap());
    assert!(
        !store.revoke_own(A, "s2", now).await.unwrap(),
        "already ended"
    );
    assert_eq!(ids(store.live(A, now).await.unwrap()), ["s1"]);
    let expiry = t0() + Duration::hours(12);
    assert!(store.live(A, expiry).await.unwrap().is_empty(), "expired");
    assert!(
        !store.revoke_own(A, "s1", expiry).await.unwrap(),
        "an expired one is not live"
    );
}

async fn a_client_is_seen_by_a_session_of_the_account_from_the_same_ip_and_agent_lately(
    db: TestDatabase,
) {
    let read = open(&db).await;
    let store = read.sessions();
    let days = |n: i64| t0() + Duration::days(n);
    let session =
        |id: &str, account: &str, created: i64, ip: Option<&str>, agent: Option<&str>| Session {
            session_id: id.to_owned(),
            account_id: account.to_owned(),
            created_at: days(created),
            expires_at: days(created) + Duration::hours(12),
            last_used_at: Some(days(created)),
            ip: ip.map(str::to_owned),
            user_agent: agent.map(str::to_owned),
        };
    const IP: &str = "198.51.100.4";
    const FIREFOX: &str = "Mozilla/5.0 Firefox/133.0";
    for (hash, s) in [
        ("h1", session("s1", A, 0, Some(IP), Some(FIREFOX))),
        ("h2", session("s2", A, 20, Some("2001:db8::1"), None)),
        ("h3", session("s3", B, 40, Some(IP), Some("curl/8.5.0"))),
    ] {
        store.create(hash, &s).await.unwrap();
    }
    let seen = |ip: Option<&'static str>, agent: Option<&'static str>, since: i64| {
        let store = read.sessions();
        async move { store.seen_client(A, ip, agent, days(since)).await.unwrap() }
    };
    // Created at or after `since`: seen; the same IP and user agent both, on this account.
    assert!(seen(Some(IP), Some(FIREFOX), 0).await);
    assert!(!seen(Some(IP), Some(FIREFOX), 1).await, "too long ago");
    assert!(!seen(Some(IP), Some("Mozilla/5.0 Chrome/131.0"), 0).await);
    assert!(!seen(Some("198.51.100.5"), Some(FIREFOX), 0).await);
    assert!(
        !seen(Some(IP), Some("curl/8.5.0"), 0).await,
        "another account's client"
    );
    // A missing user agent matches only a missing one.
    assert!(seen(Some("2001:db8::1"), None, 20).await);
    assert!(!seen(Some("2001:db8::1"), Some(FIREFOX), 0).await);
    assert!(!seen(Some(IP), None, 0).await);
    // A use of an old session counts from the use, and an ended session still counts.
    store
        .touch("s1", days(30), days(30) - Duration::minutes(1))
        .await
        .unwrap();
    assert!(seen(Some(IP), Some(FIREFOX), 25).await);
    store.revoke("s1", days(31)).await.unwrap();
    assert!(seen(Some(IP), Some(FIREFOX), 30).await, "signing out");
    assert!(!seen(Some(IP), Some(FIREFOX), 31).await);
}

async fn a_checkpoint_moves_only_from_where_it_is_expected(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.projections();
    let at = |position| Checkpoint { tx_id: 1, position };
    assert_eq!(store.checkpoint("p").await.unwrap(), Checkpoint::default());
    let mut tx = store.begin().await.unwrap();
    let moved = tx
        .move_checkpoint("p", Some(Checkpoint::default()), at(5), Some(t0()))
        .await
        .unwrap();
    assert!(moved);
    tx.commit().await.unwrap();
    assert_eq!(store.checkpoint("p").await.unwrap(), at(5));

    let mut tx = store.begin().await.unwrap();
    let stale = tx
        .move_checkpoint("p", Some(Checkpoint::default()), at(9), None)
        .await
        .unwrap();
    assert!(
        !stale,
        "a checkpoint that moved on is not moved from where it was"
    );
    let any = tx.move_checkpoint("p", None, at(9), None).await.unwrap();
    assert!(any, "without an expected position it moves");
    tx.commit().await.unwrap();
    assert_eq!(store.checkpoint("p").await.unwrap(), at(9));
    assert_eq!(
        store.checkpoint("other").await.unwrap(),
        Checkpoint::default()
    );
}

async fn a_projection_transaction_is_all_or_nothing(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.projections();
    let mut a = row(A, 1);
    a.servers = vec![server(A, "ins-1", "203.0.113.1", 1)];
    let ids = [A.to_owned(), B.to_owned()];
    {
        let mut tx = store.begin().await.unwrap();
        tx.move_checkpoint(
            "p",
            None,
            Checkpoint {
                tx_id: 1,
                position: 1,
            },
            None,
        )
        .await
        .unwrap();
        tx.save(Tables::LIVE, &[&a]).await.unwrap();
        let seen = tx.load(Tables::LIVE, &ids).await.unwrap();
        assert_eq!(seen.get(A), Some(&a), "the transaction sees its own writes");
        assert_eq!(seen.len(), 1);
        // Dropped without a commit.
    }
    assert_eq!(read.profiles().profile_row(A).await.unwrap(), None);
    assert_eq!(store.checkpoint("p").await.unwrap(), Checkpoint::default());

    save(&read, Tables::LIVE, &[a.clone()]).await;
    a.last_sequence = 2;
    a.servers = vec![server(A, "ins-2", "203.0.113.2", 2)];
    save(&read, Tables::LIVE, &[a.clone()]).await;
    assert_eq!(
        read.profiles().profile_row(A).await.unwrap(),
        Some(a),
        "a saved row replaces the row and its servers"
    );
}

async fn a_rebuild_swaps_the_copies_in_and_sets_the_checkpoint(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.projections();
    let mut old = row(A, 1);
    old.servers = vec![server(A, "ins-1", "203.0.113.1", 1)];
    save(&read, Tables::LIVE, &[old, row(B, 1)]).await;
    store.create_copies().await.unwrap();
    let mut rebuilt = row(A, 4);
    rebuilt.servers = vec![server(A, "ins-9", "203.0.113.9", 9)];
    save(&read, Tables::REBUILD, &[rebuilt.clone()]).await;

    let (mut tx, live) = store.begin_holding("p").await.unwrap();
    assert_eq!(
        live,
        Checkpoint::default(),
        "the held checkpoint is created at the start"
    );
    let to = Checkpoint {
        tx_id: 3,
        position: 4,
    };
    tx.swap_in_copies("p", to).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(read.profiles().profile_row(A).await.unwrap(), Some(rebuilt));
    assert_eq!(read.profiles().profile_row(B).await.unwrap(), None);
    assert_eq!(store.checkpoint("p").await.unwrap(), to);
    // The copies are gone: a second rebuild starts from fresh ones.
    store.create_copies().await.unwrap();
}

async fn the_anchor_store_keeps_every_anchors_heads(db: TestDatabase) {
    let read = open(&db).await;
    let store = read.anchors();
    let head = |account: &str, sequence: u64, hash: char| StreamHead {
        account_id: account.to_owned(),
        sequence,
        chain_hash: hash.to_string().repeat(64),
    };
    // Microseconds survive the round trip on both backends.
    let created_at = t0() + Duration::microseconds(123_456);
    let anchor = |streams: u64, events: u64| Anchor {
        id: 0,
        created_at,
        root_hash: "f".repeat(64),
        streams,
        events,
    };
    assert_eq!(store.latest().await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    assert!(tx.latest_heads().await.unwrap().is_empty());
    let first = tx
        .store(&anchor(2, 5), &[head(A, 3, 'a'), head(B, 2, 'b')])
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    let previous = tx.latest_heads().await.unwrap();
    assert_eq!(previous.len(), 2);
    assert_eq!(previous[A].sequence, 3);
    let second = tx.store(&anchor(2, 7), &[head(A, 5, 'c')]).await.unwrap();
    assert!(second > first);

    assert_eq!(
        store.latest().await.unwrap(),
        Some(Anchor {
            id: second,
            ..anchor(2, 7)
        })
    );
    let at_first = store.heads(first).await.unwrap();
    assert_eq!((at_first[A].sequence, at_first[A].anchor_id), (3, first));
    let at_second = store.heads(second).await.unwrap();
    assert_eq!((at_second[A].sequence, at_second[A].anchor_id), (5, second));
    assert_eq!(at_second[A].chain_hash, "c".repeat(64));
    assert_eq!((at_second[B].sequence, at_second[B].anchor_id), (2, first));
    assert_eq!(store.head(A).await.unwrap(), Some(at_second[A].clone()));
    assert_eq!(store.head(C).await.unwrap(), None);
}

async fn the_relay_checkpoint_moves_only_from_where_it_is_expected_and_resets(db: TestDatabase) {
    let read = open(&db).await;
    let relay = read.relay();
    let start = Checkpoint::default();
    let first = Checkpoint {
        tx_id: 7,
        position: 3,
    };
    let second = Checkpoint {
        tx_id: 9,
        position: 1,
    };
    assert_eq!(relay.relay_checkpoint("bus").await.unwrap(), start);

    assert!(relay
        .move_relay_checkpoint("bus", start, first)
        .await
        .unwrap());
    assert_eq!(relay.relay_checkpoint("bus").await.unwrap(), first);
    // Another relay expected it elsewhere: nothing moves.
    assert!(!relay
        .move_relay_checkpoint("bus", start, second)
        .await
        .unwrap());
    assert_eq!(relay.relay_checkpoint("bus").await.unwrap(), first);
    // Checkpoints are per name.
    assert_eq!(relay.relay_checkpoint("other").await.unwrap(), start);

    assert!(relay
        .move_relay_checkpoint("bus", first, second)
        .await
        .unwrap());
    relay.reset_relay_checkpoint("bus").await.unwrap();
    assert_eq!(relay.relay_checkpoint("bus").await.unwrap(), start);
    assert!(relay
        .move_relay_checkpoint("bus", start, first)
        .await
        .unwrap());
}
