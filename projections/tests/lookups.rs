//! Lookups by mobile, login email and server IP follow the values as they move between
//! accounts, and the projected row holds the facts the domain folds from the same events (the
//! profile itself is the domain's, on every route).
//! Commands run through the real executor; the projector catches up from the real log.

#[macro_use]
mod support;

use chrono::{DateTime, Utc};
use domain::account::AccountEvent;
use domain::values::AccountId;
use domain::{Account, AccountCommand, Channel};
use projections::profile::ProfileRow;
use support::*;
use testkit::sample;
use testkit::TestDatabase;

on_both_backends!(
    a_recovery_mobile_lookup_follows_the_mobile_as_it_moves_between_accounts,
    a_server_ip_lookup_follows_the_ip_from_release_to_another_account,
    the_login_email_lookup_finds_only_a_bound_login_email_spelled_exactly,
    the_projected_row_of_an_account_with_a_full_history_holds_the_domains_facts,
    the_projected_row_of_a_full_history_at_whole_seconds_holds_the_domains_facts,
    every_projected_row_of_a_generated_history_holds_the_domains_facts,
);

fn ids(accounts: &[&AccountId]) -> Vec<String> {
    accounts.iter().map(|a| a.as_str().to_owned()).collect()
}

async fn a_recovery_mobile_lookup_follows_the_mobile_as_it_moves_between_accounts(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    let projector = env.projector();
    let (shared, other, pending, login) = (mobile(1), mobile(2), mobile(3), mobile(4));
    let a = writer.register_with_email("ada@example.com").await;
    let b = writer.register_with_email("bob@example.com").await;

    writer.change_recovery_mobile(&a, &shared).await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_mobile(shared.as_str()).await.unwrap(),
        ids(&[&a])
    );

    // Both hold it.
    writer.change_recovery_mobile(&b, &shared).await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_mobile(shared.as_str()).await.unwrap(),
        ids(&[&a, &b])
    );

    // A moves away: only B holds it now, and A is found by its new one.
    writer.change_recovery_mobile(&a, &other).await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_mobile(shared.as_str()).await.unwrap(),
        ids(&[&b])
    );
    assert_eq!(
        env.read.accounts_by_mobile(other.as_str()).await.unwrap(),
        ids(&[&a])
    );

    // A requested but unconfirmed change counts for nothing (only verified values do).
    writer.request_recovery_mobile(&b, &pending).await;
    env.settle(&projector).await;
    assert!(env
        .read
        .accounts_by_mobile(pending.as_str())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        env.read.accounts_by_mobile(shared.as_str()).await.unwrap(),
        ids(&[&b])
    );

    // A login mobile is found too, and stays found when the recovery mobile moves elsewhere.
    let c = writer.register_with_mobile(&login).await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_mobile(login.as_str()).await.unwrap(),
        ids(&[&c])
    );
    writer.change_recovery_mobile(&c, &shared).await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_mobile(login.as_str()).await.unwrap(),
        ids(&[&c])
    );
    assert_eq!(
        env.read.accounts_by_mobile(shared.as_str()).await.unwrap(),
        ids(&[&b, &c])
    );
    assert!(env
        .read
        .accounts_by_mobile(mobile(99).as_str())
        .await
        .unwrap()
        .is_empty());
}

async fn a_server_ip_lookup_follows_the_ip_from_release_to_another_account(db: TestDatabase) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    let projector = env.projector();
    let a = writer.register_with_email("ada@example.com").await;
    let b = writer.register_with_mobile(&mobile(1)).await;
    let ip = "203.0.113.7";

    writer.assign_server(&a, "ins-a1", ip).await;
    writer.assign_server(&a, "ins-a2", "203.0.113.8").await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_server_ip(ip).await.unwrap(),
        ids(&[&a])
    );

    writer.release_server(&a, "ins-a1").await;
    env.settle(&projector).await;
    assert!(env.read.accounts_by_server_ip(ip).await.unwrap().is_empty());
    // The account's other server is untouched.
    assert_eq!(
        env.read.accounts_by_server_ip("203.0.113.8").await.unwrap(),
        ids(&[&a])
    );

    writer.assign_server(&b, "ins-b1", ip).await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_server_ip(ip).await.unwrap(),
        ids(&[&b])
    );
    let servers = env
        .read
        .profile_row(b.as_str())
        .await
        .unwrap()
        .unwrap()
        .servers;
    assert_eq!(servers.len(), 1);
    assert_eq!(
        (
            servers[0].instance_id.as_str(),
            servers[0].public_ip.as_str()
        ),
        ("ins-b1", ip)
    );

    // IPv6 addresses are looked up in their canonical text.
    writer.assign_server(&b, "ins-b2", "2001:DB8::0:1").await;
    env.settle(&projector).await;
    assert_eq!(
        env.read.accounts_by_server_ip("2001:db8::1").await.unwrap(),
        ids(&[&b])
    );
}

async fn the_login_email_lookup_finds_only_a_bound_login_email_spelled_exactly(db: TestDatabase) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    let projector = env.projector();
    // The domain is lower-cased when parsed; the local part is kept as typed.
    let a = writer.register_with_email("Ada.Lovelace@Example.COM").await;
    env.settle(&projector).await;
    assert_eq!(
        env.read
            .accounts_by_login_email("Ada.Lovelace@example.com")
            .await
            .unwrap(),
        ids(&[&a])
    );
    assert!(env
        .read
        .accounts_by_login_email("ada.lovelace@example.com")
        .await
        .unwrap()
        .is_empty());

    // A contact email is not a login email.
    let session_id = writer.step_up(&a).await;
    writer
        .execute(
            &a,
            AccountCommand::ChangeContactEmail {
                session_id,
                email: email("contact@example.net"),
                code_id: "contact-1".into(),
            },
        )
        .await;
    env.settle(&projector).await;
    assert!(env
        .read
        .accounts_by_login_email("contact@example.net")
        .await
        .unwrap()
        .is_empty());

    // Binding a login email to a mobile account: found only once confirmed.
    let b = writer.register_with_mobile(&mobile(1)).await;
    let session_id = writer.step_up(&b).await;
    let requested = writer
        .execute(
            &b,
            AccountCommand::RequestLoginEmailBinding {
                session_id,
                email: email("bea@example.com"),
                password_hash: Some(dummy_hash(2)),
                code_id: "bind-1".into(),
            },
        )
        .await;
    env.settle(&projector).await;
    assert!(env
        .read
        .accounts_by_login_email("bea@example.com")
        .await
        .unwrap()
        .is_empty());
    let code = writer.code_of(&requested);
    writer
        .execute(&b, AccountCommand::ConfirmLoginEmailBinding { code })
        .await;
    env.settle(&projector).await;
    assert_eq!(
        env.read
            .accounts_by_login_email("bea@example.com")
            .await
            .unwrap(),
        ids(&[&b])
    );
    let row = env.read.profile_row(b.as_str()).await.unwrap().unwrap();
    assert!(row.password_set, "binding set the password");
    assert_eq!(row.pending_login_email, None);
}

/// What a row keeps for the lookups and the reminder sweep: login email, login mobile,
/// recovery mobile, reset-token digest, password time, and servers (instance, IP, time).
type Facts = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Vec<(String, String, DateTime<Utc>)>,
);

fn facts_of_row(row: &ProfileRow) -> Facts {
    (
        row.login_email.clone(),
        row.login_mobile.clone(),
        row.recovery_mobile.clone(),
        row.reset_token_digest.clone(),
        row.password_changed_at,
        row.servers
            .iter()
            .map(|s| (s.instance_id.clone(), s.public_ip.clone(), s.assigned_at))
            .collect(),
    )
}

fn facts_of_account(account: &Account) -> Facts {
    let text = |v: Option<&str>| v.map(str::to_owned);
    (
        text(account.login_email.as_ref().map(|e| e.as_str())),
        text(account.login_mobile.as_ref().map(|m| m.as_str())),
        text(account.recovery_mobile.as_ref().map(|m| m.as_str())),
        text(account.reset_token.as_ref().map(|t| t.digest.as_hex())),
        account.password.as_ref().map(|p| p.changed_at),
        account
            .servers
            .iter()
            .map(|s| {
                let ip = s.public_ip.as_str().to_owned();
                (s.instance_id.clone(), ip, s.assigned_at)
            })
            .collect(),
    )
}

/// The projected row of `id` holds the facts of the account the domain folds.
async fn assert_row_holds_the_facts(env: &Env, writer: &Writer, id: &AccountId) {
    let account = writer.account(id).await;
    let row = env
        .read
        .profile_row(id.as_str())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no profile row for {id}"));
    assert_eq!(facts_of_row(&row), facts_of_account(&account), "{id}");
}

/// The wall clock, as in production: its instants have nanoseconds.
async fn the_projected_row_of_an_account_with_a_full_history_holds_the_domains_facts(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let writer = Writer::with_wall_clock(env.store());
    full_history_profiles_agree(&env, &writer).await;
}

/// The same at whole-second instants, so that a difference in precision alone cannot hide
/// any other.
async fn the_projected_row_of_a_full_history_at_whole_seconds_holds_the_domains_facts(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let writer = Writer::new(env.store(), std::sync::Arc::new(TestClock::new(t0())));
    full_history_profiles_agree(&env, &writer).await;
}

async fn full_history_profiles_agree(env: &Env, writer: &Writer) {
    // The contact email is verified with the code the sign-up sent.
    let (a, signup_code) = writer.register_with_email_code("ada@example.com").await;
    writer
        .execute(
            &a,
            AccountCommand::VerifyContact {
                channel: Channel::Email,
                code: signup_code,
            },
        )
        .await;
    let session_id = writer.step_up(&a).await;
    let changed = writer
        .execute(
            &a,
            AccountCommand::ChangeContactMobile {
                session_id: session_id.clone(),
                mobile: mobile(10),
                code_id: "contact-mobile-1".into(),
            },
        )
        .await;
    let code = writer.code_of(&changed);
    writer
        .execute(
            &a,
            AccountCommand::VerifyContact {
                channel: Channel::Sms,
                code,
            },
        )
        .await;
    writer.change_recovery_mobile(&a, &mobile(11)).await;
    let requested = writer
        .execute(
            &a,
            AccountCommand::RequestRecoveryEmailChange {
                session_id: writer.step_up(&a).await,
                email: email("backup@example.org"),
                code_id: "recovery-email-1".into(),
            },
        )
        .await;
    let code = writer.code_of(&requested);
    writer
        .execute(
            &a,
            AccountCommand::ConfirmRecoveryChange {
                channel: Channel::Email,
                code,
            },
        )
        .await;
    writer.assign_server(&a, "ins-1", "203.0.113.1").await;
    writer.assign_server(&a, "ins-2", "203.0.113.2").await;
    writer.assign_server(&a, "ins-3", "2001:db8::3").await;
    writer.release_server(&a, "ins-2").await;
    writer.change_password(&a, 100).await;
    writer.execute(&a, AccountCommand::IssueResetToken).await;
    // Left pending: the profile shows it.
    writer.request_recovery_mobile(&a, &mobile(12)).await;

    let b = writer.register_with_mobile(&mobile(20)).await;
    let session_id = writer.step_up(&b).await;
    writer
        .execute(
            &b,
            AccountCommand::RequestLoginEmailBinding {
                session_id,
                email: email("bea@example.com"),
                password_hash: Some(dummy_hash(3)),
                code_id: "bind-1".into(),
            },
        )
        .await;
    writer.assign_server(&b, "ins-4", "198.51.100.4").await;

    env.project().await;
    assert_row_holds_the_facts(env, writer, &a).await;
    assert_row_holds_the_facts(env, writer, &b).await;
    // What the lookups answer from those facts.
    assert_eq!(
        env.read
            .accounts_by_mobile(mobile(11).as_str())
            .await
            .unwrap(),
        ids(&[&a])
    );
    assert!(
        env.read
            .accounts_by_mobile(mobile(12).as_str())
            .await
            .unwrap()
            .is_empty(),
        "a pending recovery mobile is not looked up"
    );
    assert_eq!(
        env.read.accounts_by_server_ip("2001:db8::3").await.unwrap(),
        ids(&[&a])
    );
    assert!(
        env.read
            .accounts_by_server_ip("203.0.113.2")
            .await
            .unwrap()
            .is_empty(),
        "a released IP is not looked up"
    );
    assert!(
        env.read
            .accounts_by_login_email("bea@example.com")
            .await
            .unwrap()
            .is_empty(),
        "a pending login email is not looked up"
    );

    // The reset link is findable by its digest until the password changes.
    let digest = writer
        .account(&a)
        .await
        .reset_token
        .as_ref()
        .map(|t| t.digest.as_hex().to_owned())
        .expect("a live reset token");
    assert_eq!(
        env.read
            .account_by_reset_token(&digest)
            .await
            .unwrap()
            .as_deref(),
        Some(a.as_str())
    );
    writer.change_password(&a, 101).await;
    env.project().await;
    assert_eq!(
        env.read.account_by_reset_token(&digest).await.unwrap(),
        None
    );
    assert_row_holds_the_facts(env, writer, &a).await;
}

async fn every_projected_row_of_a_generated_history_holds_the_domains_facts(db: TestDatabase) {
    let env = Env::new(db).await;
    let history = sample::history(400, 12_000, 31);
    insert_history(env.store(), &history).await;
    env.project().await;

    let mut accounts: std::collections::BTreeMap<&str, Account> = Default::default();
    for e in &history {
        cqrs_es::Aggregate::apply(
            accounts.entry(e.aggregate_id.as_str()).or_default(),
            e.event.clone(),
        );
    }
    assert_eq!(accounts.len(), 400);
    for (id, account) in &accounts {
        let row = env
            .read
            .profile_row(id)
            .await
            .unwrap()
            .expect("a profile row");
        assert_eq!(
            facts_of_row(&row),
            facts_of_account(account),
            "account {id}"
        );
        // The row also reflects the last event of the stream.
        let last = history
            .iter()
            .rev()
            .find(|e| e.aggregate_id == *id)
            .unwrap();
        assert_eq!(row.last_sequence as u64, last.sequence, "account {id}");
    }
    // Something to look up was generated, and the lookups agree with the fold.
    let with_recovery = accounts
        .values()
        .filter_map(|a| a.recovery_mobile.as_ref())
        .next()
        .expect("some recovery mobile");
    let mut expected: Vec<String> = accounts
        .iter()
        .filter(|(_, a)| {
            a.recovery_mobile.as_ref() == Some(with_recovery)
                || a.login_mobile.as_ref() == Some(with_recovery)
        })
        .map(|(id, _)| id.to_string())
        .collect();
    expected.sort();
    assert_eq!(
        env.read
            .accounts_by_mobile(with_recovery.as_str())
            .await
            .unwrap(),
        expected
    );
    assert!(history
        .iter()
        .any(|e| matches!(e.event, AccountEvent::RecoveryMobileChanged { .. })));
}
