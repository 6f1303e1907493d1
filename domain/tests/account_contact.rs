//! Contact mobile and email: changed at once and unverified, a code to the new value, verified
//! by that code.

mod support;

use chrono::Duration;
use cqrs_es::test::TestFramework;
use domain::account::Verifiable;
use domain::{Account, AccountCommand, AccountEvent, Channel, CodePurpose, DomainError};

use support::*;

fn assert_contact_code(
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
            sealed_code,
            ..
        } => {
            assert_eq!(*purpose, CodePurpose::Contact);
            assert_eq!(*channel, expected_channel);
            assert_eq!(target, expected_target);
            assert_eq!(*expires_at, story.now() + Duration::minutes(5));
            assert_eq!(*sealed_code, sealed(DEFAULT_CODE));
        }
        other => panic!("expected a contact code, got {other:?}"),
    }
}

#[test]
fn a_contact_mobile_change_takes_effect_at_once_unverified_with_a_code_to_the_new_value() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    let events = story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-1".into(),
    });
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        AccountEvent::ContactMobileChanged {
            previous: Some(mobile(LOGIN_MOBILE)),
            mobile: mobile(OTHER_MOBILE),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }
    );
    assert_contact_code(&events[1], Channel::Sms, OTHER_MOBILE, &story);
    assert_eq!(
        story.state().contact_mobile,
        Some(Verifiable {
            value: mobile(OTHER_MOBILE),
            verified: false,
        })
    );
}

#[test]
fn a_contact_email_change_takes_effect_at_once_unverified_with_a_code_to_the_new_value() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::VerifyContact {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });
    story.step_up("s1");
    let events = story.exec(AccountCommand::ChangeContactEmail {
        session_id: sid("s1"),
        email: email("b@example.com"),
        code_id: "c-1".into(),
    });
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        AccountEvent::ContactEmailChanged {
            previous: Some(email(LOGIN_EMAIL)),
            email: email("b@example.com"),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }
    );
    assert_contact_code(&events[1], Channel::Email, "b@example.com", &story);
    assert_eq!(
        story.state().contact_email,
        Some(Verifiable {
            value: email("b@example.com"),
            verified: false,
        })
    );
}

#[test]
fn a_first_contact_email_has_no_previous_value() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    let events = story.exec(AccountCommand::ChangeContactEmail {
        session_id: sid("s1"),
        email: email("b@example.com"),
        code_id: "c-1".into(),
    });
    assert_eq!(
        events[0],
        AccountEvent::ContactEmailChanged {
            previous: None,
            email: email("b@example.com"),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }
    );
}

#[test]
fn the_same_verified_contact_mobile_is_already_current() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story
        .given()
        .when(AccountCommand::ChangeContactMobile {
            session_id: sid("s1"),
            mobile: mobile(LOGIN_MOBILE),
            code_id: "c-1".into(),
        })
        .then_expect_error(DomainError::AlreadyCurrent);
}

#[test]
fn the_same_verified_contact_email_is_already_current() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::VerifyContact {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });
    story.step_up("s1");
    story
        .given()
        .when(AccountCommand::ChangeContactEmail {
            session_id: sid("s1"),
            email: email(LOGIN_EMAIL),
            code_id: "c-1".into(),
        })
        .then_expect_error(DomainError::AlreadyCurrent);
}

#[test]
fn the_same_unverified_contact_email_gets_only_a_fresh_code() {
    let mut story = Story::email_account();
    story.step_up("s1");
    let events = story.exec(AccountCommand::ChangeContactEmail {
        session_id: sid("s1"),
        email: email(LOGIN_EMAIL),
        code_id: "c-1".into(),
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_contact_code(&events[0], Channel::Email, LOGIN_EMAIL, &story);
}

#[test]
fn verifying_the_contact_mobile_marks_it_verified() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-1".into(),
    });
    let events = story.exec(AccountCommand::VerifyContact {
        channel: Channel::Sms,
        code: code(DEFAULT_CODE),
    });
    assert_eq!(
        events,
        vec![AccountEvent::ContactMobileVerified {
            mobile: mobile(OTHER_MOBILE),
        }]
    );
    assert_eq!(
        story.state().contact_mobile,
        Some(Verifiable {
            value: mobile(OTHER_MOBILE),
            verified: true,
        })
    );
}

#[test]
fn verifying_the_contact_email_marks_it_verified() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::VerifyContact {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });
    assert_eq!(
        story.state().contact_email,
        Some(Verifiable {
            value: email(LOGIN_EMAIL),
            verified: true,
        })
    );
}

#[test]
fn an_already_verified_contact_has_nothing_to_verify() {
    Story::mobile_account()
        .given()
        .when(AccountCommand::VerifyContact {
            channel: Channel::Sms,
            code: code(DEFAULT_CODE),
        })
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_contact_email_change_sends_a_code_bound_to_the_account_purpose_and_new_value() {
    let mut given = registered_by_email(t0());
    given.push(stepped_up("s1", t0()));
    let at = t0() + Duration::minutes(9);
    TestFramework::<Account>::with(services(at))
        .given(given)
        .when(AccountCommand::ChangeContactEmail {
            session_id: sid("s1"),
            email: email("b@example.com"),
            code_id: "c-1".into(),
        })
        .then_expect_events(vec![
            AccountEvent::ContactEmailChanged {
                previous: Some(email(LOGIN_EMAIL)),
                email: email("b@example.com"),
                protection: Some(link(DEFAULT_TOKEN, at)),
            },
            code_issued(
                CodePurpose::Contact,
                Channel::Email,
                "b@example.com",
                "c-1",
                None,
                DEFAULT_CODE,
                at,
            ),
        ]);
}
