//! The account as it stood at an instant (issue 7): a scripted history runs through the real
//! write path with a clock the test moves; at several instants the profile is captured from the
//! write side's own state (`Executor::load` → `Account::profile`); afterwards `state_at` of each
//! instant must equal what was captured then.

#[macro_use]
mod support_audit;

use chrono::{DateTime, Duration, Utc};
use domain::account::Profile;
use domain::values::AccountId;
use domain::{AccountCommand, Channel, PasswordCheck, PasswordHash, ReuseCheck};
use support_audit::*;
use testkit::TestDatabase;

on_both_backends!(
    the_state_at_each_instant_equals_the_profile_captured_then,
    an_account_has_no_state_before_its_registration,
);

fn dummy_hash(n: u32) -> PasswordHash {
    PasswordHash::from_phc(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$dGVzdHNhbHQ${n:043}"
    ))
}

/// Profiles captured from the write side, by instant.
struct Captured {
    id: AccountId,
    at: Vec<(DateTime<Utc>, Option<Profile>)>,
}

impl Captured {
    async fn now(&mut self, env: &Env) {
        self.at.push((env.now(), env.profile_now(&self.id).await));
    }
}

async fn scripted_history(env: &Env) -> Captured {
    let (id, signup_code) = env
        .register_by_email("ada@example.com", dummy_hash(1))
        .await;
    let mut captured = Captured {
        id: id.clone(),
        at: Vec::new(),
    };
    captured.now(env).await;

    env.clock.advance(Duration::minutes(4));
    env.exec(
        &id,
        AccountCommand::VerifyContact {
            channel: Channel::Email,
            code: signup_code,
        },
    )
    .await;
    captured.now(env).await;

    env.clock.advance(Duration::minutes(6));
    let session = env.step_up_by_password(&id).await;
    let sent = env
        .exec(
            &id,
            AccountCommand::ChangeContactMobile {
                session_id: session.clone(),
                mobile: mobile(7),
                code_id: "contact-1".into(),
            },
        )
        .await;
    captured.now(env).await;

    env.clock.advance(Duration::minutes(1));
    captured.now(env).await; // between two events
    env.clock.advance(Duration::minutes(1));
    env.exec(
        &id,
        AccountCommand::VerifyContact {
            channel: Channel::Sms,
            code: env.code_of(&sent),
        },
    )
    .await;
    captured.now(env).await;

    env.clock.advance(Duration::minutes(1));
    let sent = env
        .exec(
            &id,
            AccountCommand::RequestRecoveryMobileChange {
                session_id: session.clone(),
                mobile: mobile(8),
                code_id: "recovery-1".into(),
            },
        )
        .await;
    captured.now(env).await; // pending recovery mobile
    env.clock.advance(Duration::minutes(1));
    env.exec(
        &id,
        AccountCommand::ConfirmRecoveryChange {
            channel: Channel::Sms,
            code: env.code_of(&sent),
        },
    )
    .await;
    captured.now(env).await; // recovery mobile differs from contact mobile: a warning

    env.clock.advance(Duration::hours(1));
    env.exec(
        &id,
        AccountCommand::AssignServerIp {
            instance_id: "i-1".into(),
            ip: server_ip(1),
        },
    )
    .await;
    captured.now(env).await;
    env.clock.advance(Duration::minutes(30));
    captured.now(env).await;

    env.clock.advance(Duration::minutes(30));
    let session = env.step_up_by_password(&id).await;
    let version = env.account(&id).await.password_version();
    env.exec(
        &id,
        AccountCommand::ChangePassword {
            session_id: session,
            current: PasswordCheck {
                against_version: version,
                matches: true,
            },
            reuse: ReuseCheck {
                against_version: version,
                reused: false,
            },
            new_hash: dummy_hash(2),
        },
    )
    .await;
    captured.now(env).await;

    // Past the reminder age with no event at all: only the instant makes the difference.
    env.clock
        .advance(Duration::days(REMINDER_DAYS) - Duration::hours(1));
    captured.now(env).await;
    env.clock.advance(Duration::hours(2));
    captured.now(env).await;

    env.clock.advance(Duration::minutes(1));
    env.exec(
        &id,
        AccountCommand::ReleaseServerIp {
            instance_id: "i-1".into(),
        },
    )
    .await;
    captured.now(env).await;
    captured
}

async fn the_state_at_each_instant_equals_the_profile_captured_then(db: TestDatabase) {
    let env = Env::new(db).await;
    env.stream_of(1, 4).await; // another account's events interleave nothing into this one
    let captured = scripted_history(&env).await;

    // The script changed what it meant to change.
    let profiles: Vec<&Profile> = captured.at.iter().filter_map(|(_, p)| p.as_ref()).collect();
    assert_eq!(profiles.len(), captured.at.len());
    let distinct = profiles.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(distinct >= 8, "only {distinct} changes between captures");
    assert!(profiles.iter().any(|p| p.password_change_recommended));
    assert!(profiles.iter().any(|p| !p.warnings.is_empty()));
    assert!(profiles.iter().any(|p| p.pending_recovery_mobile.is_some()));

    for (at, expected) in &captured.at {
        let replayed = env.audit.state_at(&captured.id, *at).await.unwrap();
        assert_eq!(&replayed, expected, "the state at {at}");
    }
}

async fn an_account_has_no_state_before_its_registration(db: TestDatabase) {
    let env = Env::new(db).await;
    env.clock.advance(Duration::hours(1));
    let registered_at = env.now();
    let id = env.stream_of(1, 3).await;

    let before = registered_at - Duration::microseconds(1);
    assert_eq!(env.audit.state_at(&id, before).await.unwrap(), None);
    let at = env.audit.state_at(&id, registered_at).await.unwrap();
    assert_eq!(at.map(|p| p.account_id), Some(id.clone()));
    let unknown = AccountId::parse("100000000999").unwrap();
    assert_eq!(env.audit.state_at(&unknown, env.now()).await.unwrap(), None);
}
