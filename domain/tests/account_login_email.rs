//! Binding a login email to an account made with a mobile.

mod support;

use domain::account::{rejection, PasswordChangeReason};
use domain::{AccountCommand, AccountEvent, Channel, CodePurpose, DomainError};

use support::*;

const BOUND: &str = "m@example.com";

fn request(session: &str, password_hash: Option<&str>) -> AccountCommand {
    AccountCommand::RequestLoginEmailBinding {
        session_id: sid(session),
        email: email(BOUND),
        password_hash: password_hash.map(hash),
        code_id: "c-le".into(),
    }
}

fn confirm(value: &str) -> AccountCommand {
    AccountCommand::ConfirmLoginEmailBinding { code: code(value) }
}

#[test]
fn login_email_already_bound_comes_before_the_step_up_check() {
    Story::email_account()
        .given()
        .when(request("s1", None))
        .then_expect_error(DomainError::LoginEmailAlreadyBound);
    Story::email_account()
        .given()
        .when(request("s1", Some("phc-x")))
        .then_expect_error(DomainError::LoginEmailAlreadyBound);
}

#[test]
fn a_login_email_binding_needs_a_step_up() {
    Story::mobile_account()
        .given()
        .when(request("s1", Some("phc-m")))
        .then_expect_error(DomainError::IdentityVerificationRequired);
}

#[test]
fn an_account_without_a_password_must_choose_one_to_bind_a_login_email() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story
        .given()
        .when(request("s1", None))
        .then_expect_error(DomainError::PasswordRequired);
}

#[test]
fn a_login_email_binding_request_sends_a_code_to_the_email_and_binds_nothing_yet() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    let events = story.exec(request("s1", Some("phc-m")));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        AccountEvent::LoginEmailBindingRequested {
            email: email(BOUND),
            password_hash: Some(hash("phc-m")),
        }
    );
    match &events[1] {
        AccountEvent::VerificationCodeIssued {
            purpose,
            channel,
            target,
            ..
        } => {
            assert_eq!(*purpose, CodePurpose::LoginEmail);
            assert_eq!(*channel, Channel::Email);
            assert_eq!(target, BOUND);
        }
        other => panic!("expected a code, got {other:?}"),
    }
    let state = story.state();
    assert_eq!(state.login_email, None);
    assert!(state.password.is_none());
}

#[test]
fn the_login_email_and_its_password_are_set_at_confirmation() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request("s1", Some("phc-m")));
    let events = story.exec(confirm(DEFAULT_CODE));
    assert_eq!(
        events,
        vec![
            AccountEvent::LoginEmailBound {
                email: email(BOUND),
                protection: Some(link(DEFAULT_TOKEN, story.now())),
            },
            AccountEvent::PasswordChanged {
                password_hash: hash("phc-m"),
                reason: PasswordChangeReason::LoginEmailBound,
                changed_at: story.now(),
                protection: Some(link(DEFAULT_TOKEN, story.now())),
            },
        ]
    );
    let state = story.state();
    assert_eq!(state.login_email, Some(email(BOUND)));
    assert_eq!(state.pending_login_email, None);
    assert_eq!(state.password_version(), 1);
    assert_eq!(
        state.password.as_ref().map(|p| p.hash.clone()),
        Some(hash("phc-m"))
    );
}

#[test]
fn binding_a_login_email_does_not_change_the_contact_email() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request("s1", Some("phc-m")));
    story.exec(confirm(DEFAULT_CODE));
    let state = story.state();
    assert_eq!(state.contact_email, None);
    assert!(!story.events.iter().any(|e| matches!(
        e,
        AccountEvent::ContactEmailChanged { .. } | AccountEvent::ContactEmailVerified { .. }
    )));
}

#[test]
fn a_wrong_code_does_not_bind_the_login_email() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request("s1", Some("phc-m")));
    let events = story.exec(confirm("000000"));
    assert_eq!(rejection(&events), Some(DomainError::InvalidCode));
    assert_eq!(story.state().login_email, None);
    assert!(story.state().password.is_none());
}

#[test]
fn a_login_email_confirmation_without_a_request_has_expired() {
    Story::mobile_account()
        .given()
        .when(confirm(DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_bound_login_email_cannot_be_confirmed_again() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request("s1", Some("phc-m")));
    story.exec(confirm(DEFAULT_CODE));
    story
        .given()
        .when(confirm(DEFAULT_CODE))
        .then_expect_error(DomainError::LoginEmailAlreadyBound);
}
