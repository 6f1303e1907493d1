//! Bearer sessions (SPEC §2 "Sign-in"): found by their token while they live (12 hours), not
//! after they expire or are revoked; an account's sessions can be revoked all but one; and the
//! token is stored only as its SHA-256.

#[macro_use]
mod support;

use chrono::{DateTime, Duration, Utc};
use projections::sessions::{token_hash, Session, SESSION_TTL};
use projections::ReadStore;
use sha2::{Digest, Sha256};
use support::*;
use testkit::TestDatabase;

on_both_backends!(
    a_session_is_found_by_its_token_until_it_expires,
    revoking_one_session_ends_that_session_only,
    revoking_the_sessions_of_an_account_keeps_the_one_named_and_spares_other_accounts,
    a_token_is_stored_only_as_its_sha256,
);

fn session(id: &str, account: &str, created_at: DateTime<Utc>) -> Session {
    Session {
        session_id: id.to_owned(),
        account_id: account.to_owned(),
        created_at,
        expires_at: created_at + SESSION_TTL,
        last_used_at: None,
        ip: None,
        user_agent: None,
    }
}

/// An opaque token of the session `id` (the gateway draws ≥128 random bits).
fn token(id: &str) -> String {
    format!("tok_{}", hex::encode(Sha256::digest(id.as_bytes())))
}

async fn create(read: &ReadStore, s: &Session) {
    read.create_session(&token(&s.session_id), s)
        .await
        .expect("create a session");
}

async fn active(read: &ReadStore, id: &str, now: DateTime<Utc>) -> Option<Session> {
    read.active_session(&token(id), now)
        .await
        .expect("look a session up")
        .map(|active| active.session)
}

async fn a_session_is_found_by_its_token_until_it_expires(db: TestDatabase) {
    let env = Env::new(db).await;
    let s = session("s1", FIRST_ID, t0());
    create(&env.read, &s).await;
    assert_eq!(SESSION_TTL, Duration::hours(12));

    assert_eq!(active(&env.read, "s1", t0()).await, Some(s.clone()));
    assert_eq!(
        active(&env.read, "s1", t0() + Duration::hours(11)).await,
        Some(s.clone())
    );
    assert_eq!(
        active(&env.read, "s1", s.expires_at - Duration::seconds(1)).await,
        Some(s.clone())
    );
    assert_eq!(active(&env.read, "s1", s.expires_at).await, None);
    assert_eq!(
        active(&env.read, "s1", s.expires_at + Duration::days(1)).await,
        None
    );
    // Another token finds nothing.
    assert_eq!(
        env.read.active_session("tok_unknown", t0()).await.unwrap(),
        None
    );
}

async fn revoking_one_session_ends_that_session_only(db: TestDatabase) {
    let env = Env::new(db).await;
    let (s1, s2, s3) = (
        session("s1", FIRST_ID, t0()),
        session("s2", FIRST_ID, t0()),
        session("s3", "100000000002", t0()),
    );
    for s in [&s1, &s2, &s3] {
        create(&env.read, s).await;
    }
    let now = t0() + Duration::minutes(5);
    env.read.revoke_session("s1", now).await.unwrap();
    assert_eq!(active(&env.read, "s1", now).await, None);
    assert_eq!(active(&env.read, "s2", now).await, Some(s2));
    assert_eq!(active(&env.read, "s3", now).await, Some(s3));
    // Revoking it again, or an unknown session, is harmless.
    env.read.revoke_session("s1", now).await.unwrap();
    env.read.revoke_session("nope", now).await.unwrap();
    assert_eq!(active(&env.read, "s1", now).await, None);
}

async fn revoking_the_sessions_of_an_account_keeps_the_one_named_and_spares_other_accounts(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let other = "100000000002";
    let mine = ["s1", "s2", "s3"].map(|id| session(id, FIRST_ID, t0()));
    let theirs = session("s4", other, t0());
    for s in mine.iter().chain([&theirs]) {
        create(&env.read, s).await;
    }
    let now = t0() + Duration::hours(1);

    // A password change keeps the session that made it.
    env.read
        .revoke_sessions_of(FIRST_ID, Some("s2"), now)
        .await
        .unwrap();
    assert_eq!(active(&env.read, "s1", now).await, None);
    assert_eq!(active(&env.read, "s2", now).await, Some(mine[1].clone()));
    assert_eq!(active(&env.read, "s3", now).await, None);
    assert_eq!(active(&env.read, "s4", now).await, Some(theirs.clone()));

    // A reset keeps none.
    env.read
        .revoke_sessions_of(FIRST_ID, None, now)
        .await
        .unwrap();
    for id in ["s1", "s2", "s3"] {
        assert_eq!(active(&env.read, id, now).await, None, "{id}");
    }
    assert_eq!(active(&env.read, "s4", now).await, Some(theirs));
}

async fn a_token_is_stored_only_as_its_sha256(db: TestDatabase) {
    let env = Env::new(db).await;
    let s = session("s1", FIRST_ID, t0());
    let bearer = token("s1");
    env.read.create_session(&bearer, &s).await.unwrap();
    assert_eq!(
        token_hash(&bearer),
        hex::encode(Sha256::digest(bearer.as_bytes()))
    );

    // Every column of every row, as text.
    let rows: Vec<String> = match &testkit::Raw::of(env.store()) {
        testkit::Raw::Postgres(pool) => {
            sqlx::query_scalar("SELECT row_to_json(s)::text FROM sessions s")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        testkit::Raw::Sqlite(pool) => sqlx::query_scalar(
            "SELECT json_object('token_hash', token_hash, 'session_id', session_id, \
                    'account_id', account_id, 'created_at', created_at, \
                    'expires_at', expires_at, 'revoked_at', revoked_at) FROM sessions",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].contains(&bearer),
        "the token is stored in clear: {}",
        rows[0]
    );
    assert!(!rows[0].contains(&bearer["tok_".len()..]));
    assert!(rows[0].contains(&token_hash(&bearer)));
    assert_eq!(active(&env.read, "s1", t0()).await, Some(s));
}
