//! Identity verification during a session (step-up): which commands need it, how long it
//! lasts, which session it belongs to, and the three methods.

mod support;

use chrono::Duration;
use domain::account::{rejection, VerificationMethod};
use domain::{AccountCommand, AccountEvent, Channel, CodePurpose, DomainError};

use support::*;

fn login_email_binding(session: &str) -> AccountCommand {
    AccountCommand::RequestLoginEmailBinding {
        session_id: sid(session),
        email: email("m@example.com"),
        password_hash: Some(hash("phc-m")),
        code_id: "c-le".into(),
    }
}

fn assert_all_gated(story: &Story, session: &str) {
    for command in gated_commands(session) {
        let label = format!("{command:?}");
        assert_eq!(
            story.run(command).map(|_| ()),
            Err(DomainError::IdentityVerificationRequired),
            "{label}"
        );
    }
}

#[test]
fn gated_commands_need_a_step_up() {
    let story = Story::email_account();
    assert_all_gated(&story, "s1");
    let mobile_story = Story::mobile_account();
    mobile_story
        .given()
        .when(login_email_binding("s1"))
        .then_expect_error(DomainError::IdentityVerificationRequired);
}

#[test]
fn signing_in_is_not_a_step_up() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::SignInWithPassword {
        check: matching(1),
        session_id: sid("s1"),
        new_client: None,
    });
    assert_all_gated(&story, "s1");
}

#[test]
fn a_step_up_authorises_every_gated_command_of_its_session() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    for command in gated_commands("s1") {
        let label = format!("{command:?}");
        assert!(story.run(command).is_ok(), "{label}");
    }
    let mut mobile_story = Story::mobile_account();
    mobile_story.step_up_by_sms("s1");
    assert!(mobile_story.run(login_email_binding("s1")).is_ok());
}

#[test]
fn a_step_up_lapses_after_ten_minutes() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    story.advance(Duration::minutes(10));
    assert_all_gated(&story, "s1");
}

#[test]
fn a_step_up_still_holds_just_before_ten_minutes() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    story.advance(Duration::minutes(10) - Duration::seconds(1));
    for command in gated_commands("s1") {
        let label = format!("{command:?}");
        assert!(story.run(command).is_ok(), "{label}");
    }
}

#[test]
fn a_step_up_belongs_to_its_session() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    assert_all_gated(&story, "s2");
}

#[test]
fn a_step_up_is_not_used_up_by_a_request() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-1".into(),
    });
    story.exec(AccountCommand::RequestRecoveryMobileChange {
        session_id: sid("s1"),
        mobile: mobile(THIRD_MOBILE),
        code_id: "c-2".into(),
    });
    story.exec(AccountCommand::ChangeContactEmail {
        session_id: sid("s1"),
        email: email("b@example.com"),
        code_id: "c-3".into(),
    });
    assert!(story.state().is_verified(&sid("s1"), story.now()));
}

#[test]
fn a_step_up_by_sms_sends_a_code_to_the_recovery_mobile_bound_to_the_session() {
    let story = Story::mobile_account();
    let events = story
        .run(AccountCommand::StartIdentityVerification {
            verification_id: "v1".into(),
            method: VerificationMethod::Sms,
            session_id: sid("s1"),
        })
        .unwrap();
    assert_eq!(events.len(), 1);
    match &events[0] {
        AccountEvent::VerificationCodeIssued {
            code_id,
            purpose,
            channel,
            target,
            expires_at,
            bound_to,
            ..
        } => {
            assert_eq!(code_id, "v1");
            assert_eq!(*purpose, CodePurpose::StepUp);
            assert_eq!(*channel, Channel::Sms);
            assert_eq!(target, LOGIN_MOBILE);
            assert_eq!(*expires_at, story.now() + Duration::minutes(5));
            assert_eq!(bound_to.as_deref(), Some("s1"));
        }
        other => panic!("expected a code, got {other:?}"),
    }
}

#[test]
fn the_step_up_code_confirms_the_identity_for_ten_minutes() {
    let mut story = Story::mobile_account();
    story.exec(AccountCommand::StartIdentityVerification {
        verification_id: "v1".into(),
        method: VerificationMethod::Sms,
        session_id: sid("s1"),
    });
    story.advance(Duration::minutes(2));
    story
        .given()
        .when(AccountCommand::ConfirmIdentityWithCode {
            verification_id: "v1".into(),
            session_id: sid("s1"),
            code: code(DEFAULT_CODE),
        })
        .then_expect_events(vec![AccountEvent::IdentityVerified {
            verification_id: "v1".into(),
            method: VerificationMethod::Sms,
            session_id: sid("s1"),
            verified_until: story.now() + Duration::minutes(10),
        }]);
}

#[test]
fn a_step_up_by_email_sends_a_code_to_the_recovery_email() {
    let mut story = Story::email_account();
    story.step_up_by_password("s0");
    story.exec(AccountCommand::RequestRecoveryEmailChange {
        session_id: sid("s0"),
        email: email("r@example.com"),
        code_id: "c-re".into(),
    });
    story.exec(AccountCommand::ConfirmRecoveryChange {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });

    let events = story
        .run(AccountCommand::StartIdentityVerification {
            verification_id: "v1".into(),
            method: VerificationMethod::Email,
            session_id: sid("s1"),
        })
        .unwrap();
    match events.as_slice() {
        [AccountEvent::VerificationCodeIssued {
            purpose,
            channel,
            target,
            bound_to,
            ..
        }] => {
            assert_eq!(*purpose, CodePurpose::StepUp);
            assert_eq!(*channel, Channel::Email);
            assert_eq!(target, "r@example.com");
            assert_eq!(bound_to.as_deref(), Some("s1"));
        }
        other => panic!("expected one code, got {other:?}"),
    }
    story.events.extend(events);
    story
        .given()
        .when(AccountCommand::ConfirmIdentityWithCode {
            verification_id: "v1".into(),
            session_id: sid("s1"),
            code: code(DEFAULT_CODE),
        })
        .then_expect_events(vec![AccountEvent::IdentityVerified {
            verification_id: "v1".into(),
            method: VerificationMethod::Email,
            session_id: sid("s1"),
            verified_until: story.now() + Duration::minutes(10),
        }]);
}

#[test]
fn a_step_up_code_confirmed_from_another_session_has_expired() {
    let mut story = Story::mobile_account();
    story.exec(AccountCommand::StartIdentityVerification {
        verification_id: "v1".into(),
        method: VerificationMethod::Sms,
        session_id: sid("s1"),
    });
    story
        .given()
        .when(AccountCommand::ConfirmIdentityWithCode {
            verification_id: "v1".into(),
            session_id: sid("s2"),
            code: code(DEFAULT_CODE),
        })
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_step_up_by_a_method_the_account_lacks_is_refused() {
    // An email account has no recovery mobile or email; a mobile account has no password.
    let email_story = Story::email_account();
    for method in [VerificationMethod::Sms, VerificationMethod::Email] {
        let result = email_story.run(AccountCommand::StartIdentityVerification {
            verification_id: "v1".into(),
            method,
            session_id: sid("s1"),
        });
        assert!(
            matches!(result, Err(DomainError::VerificationMethodUnavailable(_))),
            "{method:?}: {result:?}"
        );
    }
    let mobile_story = Story::mobile_account();
    let result = mobile_story.run(AccountCommand::StartIdentityVerification {
        verification_id: "v1".into(),
        method: VerificationMethod::Password,
        session_id: sid("s1"),
    });
    assert!(
        matches!(result, Err(DomainError::VerificationMethodUnavailable(_))),
        "{result:?}"
    );
}

#[test]
fn a_step_up_by_password_sends_nothing() {
    Story::email_account()
        .given()
        .when(AccountCommand::StartIdentityVerification {
            verification_id: "v1".into(),
            method: VerificationMethod::Password,
            session_id: sid("s1"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_step_up_by_the_right_password_verifies_for_ten_minutes() {
    let story = Story::email_account();
    story.advance(Duration::minutes(3));
    story
        .given()
        .when(AccountCommand::ConfirmIdentityWithPassword {
            verification_id: "v1".into(),
            session_id: sid("s1"),
            check: matching(1),
        })
        .then_expect_events(vec![AccountEvent::IdentityVerified {
            verification_id: "v1".into(),
            method: VerificationMethod::Password,
            session_id: sid("s1"),
            verified_until: t0() + Duration::minutes(13),
        }]);
}

#[test]
fn a_step_up_by_a_wrong_password_is_recorded_as_a_failed_check() {
    let story = Story::email_account();
    let events = story
        .run(AccountCommand::ConfirmIdentityWithPassword {
            verification_id: "v1".into(),
            session_id: sid("s1"),
            check: not_matching(1),
        })
        .unwrap();
    assert_eq!(
        events,
        vec![AccountEvent::SignInFailed {
            consecutive_failures: 1,
            at: story.now(),
        }]
    );
    assert_eq!(rejection(&events), Some(DomainError::InvalidCredentials));
}

#[test]
fn a_failed_step_up_does_not_authorise_gated_commands() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::ConfirmIdentityWithPassword {
        verification_id: "v1".into(),
        session_id: sid("s1"),
        check: not_matching(1),
    });
    assert_all_gated(&story, "s1");
}

#[test]
fn a_step_up_of_another_session_leaves_the_first_one_in_place() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    story.advance(Duration::minutes(1));
    story.step_up_by_password("s2");
    let state = story.state();
    assert!(state.is_verified(&sid("s1"), story.now()));
    assert!(state.is_verified(&sid("s2"), story.now()));
    assert!(story
        .run(AccountCommand::ChangeContactMobile {
            session_id: sid("s1"),
            mobile: mobile(OTHER_MOBILE),
            code_id: "c-1".into(),
        })
        .is_ok());
}
