//! New-sign-in notices (issue 15, docs/adr/0009): a sign-in from a client the account had no
//! recent session from is recorded with the client and a protection link for its notice;
//! following that link freezes the account and reverts nothing (a sign-in set no value).

mod support;

use domain::account::{NewClient, ProtectedChange, SignInClient};
use domain::rules::USER_AGENT_MAX_CHARS;
use domain::{AccountCommand, AccountEvent, DomainError};

use support::*;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn client() -> SignInClient {
    SignInClient::new(Some("198.51.100.4".parse().unwrap()), Some(FIREFOX))
}

fn sign_in_with_password(session: &str, new_client: Option<SignInClient>) -> AccountCommand {
    AccountCommand::SignInWithPassword {
        check: matching(1),
        session_id: sid(session),
        new_client,
    }
}

fn the_new_client(events: &[AccountEvent]) -> Option<NewClient> {
    match events {
        [AccountEvent::SignedIn { new_client, .. }] => new_client.clone(),
        other => panic!("not one sign-in: {other:?}"),
    }
}

#[test]
fn a_password_sign_in_from_a_new_client_records_it_with_the_link_of_its_notice() {
    let mut story = Story::email_account();
    story.next_token("new-client");
    let events = story.exec(sign_in_with_password("s1", Some(client())));
    assert_eq!(
        events,
        vec![AccountEvent::SignedIn {
            method: domain::account::VerificationMethod::Password,
            session_id: sid("s1"),
            at: story.now(),
            new_client: Some(NewClient {
                ip: Some("198.51.100.4".parse().unwrap()),
                user_agent: Some(FIREFOX.to_owned()),
                protection: link("new-client", story.now()),
            }),
        }]
    );
}

#[test]
fn an_sms_sign_in_from_a_new_client_records_it_with_a_link_too() {
    let mut story = Story::mobile_account();
    story.next_token("sms-client");
    let events = story.exec(AccountCommand::SignInWithSms {
        session_id: sid("s1"),
        new_client: Some(client()),
    });
    let new_client = the_new_client(&events).expect("a new client");
    assert_eq!(new_client.protection, link("sms-client", story.now()));
}

#[test]
fn a_sign_in_from_a_known_client_records_no_client_and_no_link() {
    let mut story = Story::email_account();
    let events = story.exec(sign_in_with_password("s1", None));
    assert_eq!(the_new_client(&events), None);
    assert!(story.state().protections.is_empty());
}

#[test]
fn following_a_new_sign_in_link_freezes_the_account_and_reverts_nothing() {
    let mut story = Story::email_account();
    story.next_token("intruder");
    story.exec(sign_in_with_password("intruder-session", Some(client())));
    let change = ProtectedChange::SignIn {
        session_id: sid("intruder-session"),
        ip: Some("198.51.100.4".parse().unwrap()),
        user_agent: Some(FIREFOX.to_owned()),
    };
    assert_eq!(change.kind(), "sign_in");
    assert!(!change.is_revertible());
    let events = story.exec(AccountCommand::FreezeAccount {
        token_digest: token_digest(&protection_token("intruder")),
    });
    assert_eq!(
        events,
        vec![AccountEvent::AccountFrozen {
            change,
            token_digest: token_digest(&protection_token("intruder")),
            frozen_at: story.now(),
        }]
    );
    let state = story.state();
    assert!(state.is_frozen());
    assert_eq!(state.password_version(), 1);
    // Password sign-in now waits for a reset, and the link is used up.
    story
        .given()
        .when(sign_in_with_password("again", Some(client())))
        .then_expect_error(DomainError::AccountFrozen);
    story
        .given()
        .when(AccountCommand::FreezeAccount {
            token_digest: token_digest(&protection_token("intruder")),
        })
        .then_expect_error(DomainError::ProtectionTokenInvalid);
}

#[test]
fn a_wrong_password_from_a_new_client_mints_no_link() {
    let mut story = Story::email_account();
    story.next_token("never");
    let events = story.exec(AccountCommand::SignInWithPassword {
        check: not_matching(1),
        session_id: sid("s1"),
        new_client: Some(client()),
    });
    assert!(
        matches!(events[..], [AccountEvent::SignInFailed { .. }]),
        "{events:?}"
    );
    assert!(story.state().protections.is_empty());
}

#[test]
fn the_client_keeps_a_short_user_agent_without_control_characters() {
    let long = format!("Agent\u{7}{}", "x".repeat(1000));
    let client = SignInClient::new(None, Some(&long));
    let kept = client.user_agent.expect("a user agent");
    assert_eq!(kept.chars().count(), USER_AGENT_MAX_CHARS);
    assert!(kept.starts_with("Agentx"));
    assert_eq!(SignInClient::new(None, Some(" ")).user_agent, None);
    assert_eq!(SignInClient::new(None, None).user_agent, None);
}
