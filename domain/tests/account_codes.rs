//! Verification codes on the account: five minutes, five wrong attempts, replaced by a newer
//! code, used up by their success, bound to the value they were sent to.

mod support;

use chrono::Duration;
use domain::account::rejection;
use domain::{AccountCommand, AccountEvent, Channel, CodePurpose, DomainError};

use support::*;

fn verify_email(value: &str) -> AccountCommand {
    AccountCommand::VerifyContact {
        channel: Channel::Email,
        code: code(value),
    }
}

fn verify_mobile(value: &str) -> AccountCommand {
    AccountCommand::VerifyContact {
        channel: Channel::Sms,
        code: code(value),
    }
}

fn failure(failures: u8, story: &Story) -> AccountEvent {
    AccountEvent::VerificationFailed {
        code_id: "c-signup".into(),
        purpose: CodePurpose::Contact,
        failures,
        at: story.now(),
    }
}

#[test]
fn a_code_is_accepted_just_before_five_minutes() {
    let story = Story::email_account();
    story.advance(Duration::minutes(5) - Duration::seconds(1));
    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_events(vec![AccountEvent::ContactEmailVerified {
            email: email(LOGIN_EMAIL),
        }]);
}

#[test]
fn a_code_has_expired_at_five_minutes() {
    let story = Story::email_account();
    story.advance(Duration::minutes(5));
    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_code_has_expired_after_five_minutes() {
    let story = Story::email_account();
    story.advance(Duration::hours(1));
    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_wrong_code_is_recorded_and_answers_invalid_code() {
    let story = Story::email_account();
    let events = story
        .given()
        .when(verify_email("000000"))
        .inspect_result()
        .unwrap();
    assert_eq!(events, vec![failure(1, &story)]);
    assert_eq!(rejection(&events), Some(DomainError::InvalidCode));
}

#[test]
fn a_wrong_code_leaves_the_value_unverified_and_the_right_code_still_works() {
    let mut story = Story::email_account();
    story.exec(verify_email("000000"));
    let contact = story.state().contact_email.unwrap();
    assert!(!contact.verified);
    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_events(vec![AccountEvent::ContactEmailVerified {
            email: email(LOGIN_EMAIL),
        }]);
}

#[test]
fn the_fifth_wrong_attempt_kills_the_code() {
    let mut story = Story::email_account();
    for n in 1..=4 {
        let events = story.exec(verify_email("000000"));
        assert_eq!(events, vec![failure(n, &story)]);
    }

    let fifth = story.run(verify_email("000000")).unwrap();
    assert_eq!(fifth, vec![failure(5, &story)]);
    assert_eq!(rejection(&fifth), Some(DomainError::InvalidCode));
    story.events.extend(fifth);

    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn four_wrong_attempts_do_not_kill_the_code() {
    let mut story = Story::email_account();
    for _ in 0..4 {
        story.exec(verify_email("000000"));
    }
    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_events(vec![AccountEvent::ContactEmailVerified {
            email: email(LOGIN_EMAIL),
        }]);
}

#[test]
fn a_newer_code_for_the_same_purpose_and_target_replaces_the_older_one() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    let other = mobile(OTHER_MOBILE);

    story.next_code("111111");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: other.clone(),
        code_id: "c-1".into(),
    });
    // Asking again for the same unverified value only sends a fresh code.
    story.next_code("222222");
    let again = story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: other.clone(),
        code_id: "c-2".into(),
    });
    assert_eq!(again.len(), 1, "only a fresh code: {again:?}");

    // A replaced code answers "expired" and is not counted as a wrong attempt.
    story
        .given()
        .when(verify_mobile("111111"))
        .then_expect_error(DomainError::CodeExpired);
    story
        .given()
        .when(verify_mobile("222222"))
        .then_expect_events(vec![AccountEvent::ContactMobileVerified { mobile: other }]);
}

#[test]
fn a_code_is_used_up_by_its_success() {
    let mut story = Story::email_account();
    story.exec(verify_email(DEFAULT_CODE));
    assert!(story.state().contact_email.unwrap().verified);
    story
        .given()
        .when(verify_email(DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_step_up_code_is_used_up_by_its_success() {
    let mut story = Story::mobile_account();
    story.exec(AccountCommand::StartIdentityVerification {
        verification_id: "v1".into(),
        method: domain::account::VerificationMethod::Sms,
        session_id: sid("s1"),
    });
    let confirm = AccountCommand::ConfirmIdentityWithCode {
        verification_id: "v1".into(),
        session_id: sid("s1"),
        code: code(DEFAULT_CODE),
    };
    story.exec(confirm.clone());
    story
        .given()
        .when(confirm)
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_contact_code_is_bound_to_the_value_it_was_sent_to() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.next_code("111111");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-x".into(),
    });
    story.next_code("222222");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(THIRD_MOBILE),
        code_id: "c-y".into(),
    });

    // A replaced code answers "expired" and is not counted as a wrong attempt.
    story
        .given()
        .when(verify_mobile("111111"))
        .then_expect_error(DomainError::CodeExpired);
    story
        .given()
        .when(verify_mobile("222222"))
        .then_expect_events(vec![AccountEvent::ContactMobileVerified {
            mobile: mobile(THIRD_MOBILE),
        }]);
}
