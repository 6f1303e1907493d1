//! Sign-up by email and by mobile, and commands on an account that does not exist.

mod support;

use chrono::Duration;
use cqrs_es::test::TestFramework;
use domain::account::Verifiable;
use domain::{Account, AccountCommand, AccountEvent, Channel, CodePurpose, DomainError};

use support::*;

#[test]
fn sign_up_by_email_makes_the_login_email_the_unverified_contact_email_and_sends_it_one_code() {
    let events = TestFramework::<Account>::with(services(t0()))
        .given_no_previous_events()
        .when(register_with_email())
        .inspect_result()
        .unwrap();

    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        AccountEvent::AccountRegistered {
            account_id: account_id(),
            login_email: Some(email(LOGIN_EMAIL)),
            login_mobile: None,
            contact_mobile: None,
            contact_email: Some(Verifiable {
                value: email(LOGIN_EMAIL),
                verified: false,
            }),
            recovery_mobile: None,
            password_hash: Some(hash(FIRST_HASH)),
            registered_at: t0(),
        }
    );
    match &events[1] {
        AccountEvent::VerificationCodeIssued {
            code_id,
            purpose,
            channel,
            target,
            expires_at,
            sealed_code,
            ..
        } => {
            assert_eq!(code_id, "c-signup");
            assert_eq!(*purpose, CodePurpose::Contact);
            assert_eq!(*channel, Channel::Email);
            assert_eq!(target, LOGIN_EMAIL);
            assert_eq!(*expires_at, t0() + Duration::minutes(5));
            assert_eq!(*sealed_code, sealed(DEFAULT_CODE));
        }
        other => panic!("expected a code, got {other:?}"),
    }
}

#[test]
fn the_sign_up_code_verifies_the_contact_email() {
    let story = Story::email_account();
    story
        .given()
        .when(AccountCommand::VerifyContact {
            channel: Channel::Email,
            code: code(DEFAULT_CODE),
        })
        .then_expect_events(vec![AccountEvent::ContactEmailVerified {
            email: email(LOGIN_EMAIL),
        }]);
}

#[test]
fn sign_up_by_mobile_sets_login_recovery_and_contact_mobile_verified_and_sends_no_code() {
    TestFramework::<Account>::with(services(t0()))
        .given_no_previous_events()
        .when(register_with_mobile())
        .then_expect_events(vec![AccountEvent::AccountRegistered {
            account_id: account_id(),
            login_email: None,
            login_mobile: Some(mobile(LOGIN_MOBILE)),
            contact_mobile: Some(Verifiable {
                value: mobile(LOGIN_MOBILE),
                verified: true,
            }),
            contact_email: None,
            recovery_mobile: Some(mobile(LOGIN_MOBILE)),
            password_hash: None,
            registered_at: t0(),
        }]);
}

#[test]
fn a_registered_account_cannot_register_again() {
    for given in [registered_by_email(t0()), registered_by_mobile(t0())] {
        for command in [register_with_email(), register_with_mobile()] {
            TestFramework::<Account>::with(services(t0()))
                .given(given.clone())
                .when(command)
                .then_expect_error(DomainError::AccountAlreadyExists);
        }
    }
}

#[test]
fn commands_on_an_unknown_account_answer_account_not_found() {
    let mut commands = gated_commands("s1");
    commands.extend([
        AccountCommand::VerifyContact {
            channel: Channel::Email,
            code: code(DEFAULT_CODE),
        },
        AccountCommand::SignInWithPassword {
            check: matching(0),
            session_id: sid("s1"),
            new_client: None,
        },
        AccountCommand::IssueResetToken,
        AccountCommand::AssignServerIp {
            instance_id: "ins-1".into(),
            ip: ip("203.0.113.7"),
        },
        AccountCommand::ReleaseServerIp {
            instance_id: "ins-1".into(),
        },
        AccountCommand::SendPasswordExpiryReminder,
    ]);
    for command in commands {
        TestFramework::<Account>::with(services(t0()))
            .given_no_previous_events()
            .when(command)
            .then_expect_error(DomainError::AccountNotFound);
    }
}
