//! Recovery mobile and email: requested after a step-up, a code to the new value, nothing
//! changes until that code confirms it.

mod support;

use chrono::Duration;
use domain::account::rejection;
use domain::{AccountCommand, AccountEvent, Channel, CodePurpose, DomainError};

use support::*;

fn request_mobile(value: &str) -> AccountCommand {
    AccountCommand::RequestRecoveryMobileChange {
        session_id: sid("s1"),
        mobile: mobile(value),
        code_id: "c-rm".into(),
    }
}

fn request_email(value: &str) -> AccountCommand {
    AccountCommand::RequestRecoveryEmailChange {
        session_id: sid("s1"),
        email: email(value),
        code_id: "c-re".into(),
    }
}

fn confirm(channel: Channel, value: &str) -> AccountCommand {
    AccountCommand::ConfirmRecoveryChange {
        channel,
        code: code(value),
    }
}

fn assert_recovery_code(
    event: &AccountEvent,
    expected_channel: Channel,
    expected_target: &str,
    story: &Story,
) {
    match event {
        AccountEvent::VerificationCodeIssued {
            purpose,
            channel,
            target,
            expires_at,
            ..
        } => {
            assert_eq!(*purpose, CodePurpose::Recovery);
            assert_eq!(*channel, expected_channel);
            assert_eq!(target, expected_target);
            assert_eq!(*expires_at, story.now() + Duration::minutes(5));
        }
        other => panic!("expected a recovery code, got {other:?}"),
    }
}

#[test]
fn a_recovery_mobile_change_request_sends_a_code_to_the_new_mobile_and_changes_nothing_yet() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    let events = story.exec(request_mobile(OTHER_MOBILE));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        AccountEvent::RecoveryMobileChangeRequested {
            mobile: mobile(OTHER_MOBILE),
        }
    );
    assert_recovery_code(&events[1], Channel::Sms, OTHER_MOBILE, &story);

    let state = story.state();
    assert_eq!(state.recovery_mobile, Some(mobile(LOGIN_MOBILE)));
    assert_eq!(state.pending_recovery_mobile, Some(mobile(OTHER_MOBILE)));
}

#[test]
fn the_right_code_confirms_the_recovery_mobile_change() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request_mobile(OTHER_MOBILE));
    story.advance(Duration::minutes(1));
    let events = story.exec(confirm(Channel::Sms, DEFAULT_CODE));
    assert_eq!(
        events,
        vec![AccountEvent::RecoveryMobileChanged {
            previous: Some(mobile(LOGIN_MOBILE)),
            mobile: mobile(OTHER_MOBILE),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }]
    );
    let state = story.state();
    assert_eq!(state.recovery_mobile, Some(mobile(OTHER_MOBILE)));
    assert_eq!(state.pending_recovery_mobile, None);
}

#[test]
fn a_wrong_code_does_not_change_the_recovery_mobile() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request_mobile(OTHER_MOBILE));
    let events = story.exec(confirm(Channel::Sms, "000000"));
    assert_eq!(
        events,
        vec![AccountEvent::VerificationFailed {
            code_id: "c-rm".into(),
            purpose: CodePurpose::Recovery,
            failures: 1,
            at: story.now(),
        }]
    );
    assert_eq!(rejection(&events), Some(DomainError::InvalidCode));
    let state = story.state();
    assert_eq!(state.recovery_mobile, Some(mobile(LOGIN_MOBILE)));
    assert_eq!(state.pending_recovery_mobile, Some(mobile(OTHER_MOBILE)));
}

#[test]
fn an_expired_recovery_code_does_not_change_the_recovery_mobile() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request_mobile(OTHER_MOBILE));
    story.advance(Duration::minutes(5));
    story
        .given()
        .when(confirm(Channel::Sms, DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_confirmation_without_a_request_has_expired() {
    Story::mobile_account()
        .given()
        .when(confirm(Channel::Sms, DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn the_current_recovery_mobile_is_already_current() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story
        .given()
        .when(request_mobile(LOGIN_MOBILE))
        .then_expect_error(DomainError::AlreadyCurrent);
}

#[test]
fn a_recovery_email_change_request_sends_a_code_to_the_new_email_and_changes_nothing_yet() {
    let mut story = Story::email_account();
    story.step_up("s1");
    let events = story.exec(request_email("r@example.com"));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        AccountEvent::RecoveryEmailChangeRequested {
            email: email("r@example.com"),
        }
    );
    assert_recovery_code(&events[1], Channel::Email, "r@example.com", &story);
    let state = story.state();
    assert_eq!(state.recovery_email, None);
    assert_eq!(state.pending_recovery_email, Some(email("r@example.com")));
}

#[test]
fn the_right_code_confirms_the_recovery_email_change() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story.exec(request_email("r@example.com"));
    story
        .given()
        .when(confirm(Channel::Email, DEFAULT_CODE))
        .then_expect_events(vec![AccountEvent::RecoveryEmailChanged {
            previous: None,
            email: email("r@example.com"),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }]);
}

#[test]
fn a_wrong_code_does_not_change_the_recovery_email() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story.exec(request_email("r@example.com"));
    let events = story.exec(confirm(Channel::Email, "000000"));
    assert_eq!(rejection(&events), Some(DomainError::InvalidCode));
    assert!(events
        .iter()
        .all(|e| matches!(e, AccountEvent::VerificationFailed { .. })));
    assert_eq!(story.state().recovery_email, None);
}

#[test]
fn a_recovery_change_code_is_used_up_by_its_success() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(request_mobile(OTHER_MOBILE));
    story.exec(confirm(Channel::Sms, DEFAULT_CODE));
    story
        .given()
        .when(confirm(Channel::Sms, DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}
