//! Password reset from an emailed link: the token's life, the reset code, and completion.

mod support;

use chrono::Duration;
use domain::account::rejection;
use domain::{AccountCommand, AccountEvent, Channel, CodePurpose, Digest, DomainError, ReuseCheck};

use support::*;

fn send_code(token: &str, channel: Channel) -> AccountCommand {
    AccountCommand::SendResetCode {
        token_digest: token_digest(token),
        channel,
        code_id: "c-reset".into(),
    }
}

fn complete(token: &str, reuse: ReuseCheck, code_value: Option<&str>) -> AccountCommand {
    AccountCommand::CompleteReset {
        token_digest: token_digest(token),
        reuse,
        new_hash: hash("phc-new"),
        code: code_value.map(code),
    }
}

/// An email account that also has a verified recovery mobile, so a reset needs a code.
fn account_with_recovery_mobile() -> Story {
    let mut story = Story::email_account();
    story.set_recovery_mobile(OTHER_MOBILE);
    story
}

#[test]
fn a_reset_token_is_issued_for_the_login_email_valid_thirty_minutes() {
    let story = Story::email_account();
    story.next_token("tok-a");
    story
        .given()
        .when(AccountCommand::IssueResetToken)
        .then_expect_events(vec![AccountEvent::ResetTokenIssued {
            token_digest: token_digest("tok-a"),
            sealed_token: sealed("tok-a"),
            login_email: email(LOGIN_EMAIL),
            expires_at: story.now() + Duration::minutes(30),
        }]);
}

#[test]
fn a_reset_token_needs_a_login_email() {
    Story::mobile_account()
        .given()
        .when(AccountCommand::IssueResetToken)
        .then_expect_error(DomainError::LoginEmailRequired);
}

#[test]
fn a_reset_token_works_until_thirty_minutes() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::IssueResetToken);
    story.advance(Duration::minutes(30) - Duration::seconds(1));
    assert_eq!(
        story
            .state()
            .require_reset_token(&token_digest(DEFAULT_TOKEN), story.now()),
        Ok(())
    );
    assert!(story.run(complete(DEFAULT_TOKEN, fresh(1), None)).is_ok());
}

#[test]
fn a_reset_token_is_invalid_after_thirty_minutes() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::IssueResetToken);
    story.advance(Duration::minutes(30));
    story
        .given()
        .when(complete(DEFAULT_TOKEN, fresh(1), None))
        .then_expect_error(DomainError::ResetTokenInvalid);
}

#[test]
fn an_unknown_reset_token_is_invalid() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    story
        .given()
        .when(send_code("not-issued", Channel::Sms))
        .then_expect_error(DomainError::ResetTokenInvalid);
    story
        .given()
        .when(AccountCommand::CompleteReset {
            token_digest: Digest::from_hex(DEFAULT_TOKEN),
            reuse: fresh(1),
            new_hash: hash("phc-new"),
            code: Some(code(DEFAULT_CODE)),
        })
        .then_expect_error(DomainError::ResetTokenInvalid);
}

#[test]
fn a_newer_token_invalidates_the_older_one() {
    let mut story = Story::email_account();
    story.next_token("tok-a");
    story.exec(AccountCommand::IssueResetToken);
    story.next_token("tok-b");
    story.exec(AccountCommand::IssueResetToken);
    story
        .given()
        .when(complete("tok-a", fresh(1), None))
        .then_expect_error(DomainError::ResetTokenInvalid);
    assert!(story.run(complete("tok-b", fresh(1), None)).is_ok());
}

#[test]
fn a_password_change_invalidates_the_token() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::IssueResetToken);
    story.change_password("phc-2");
    story
        .given()
        .when(complete(DEFAULT_TOKEN, fresh(2), None))
        .then_expect_error(DomainError::ResetTokenInvalid);
}

#[test]
fn a_reset_code_goes_to_the_recovery_mobile_bound_to_the_token() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    let events = story.run(send_code(DEFAULT_TOKEN, Channel::Sms)).unwrap();
    match events.as_slice() {
        [AccountEvent::VerificationCodeIssued {
            purpose,
            channel,
            target,
            expires_at,
            bound_to,
            ..
        }] => {
            assert_eq!(*purpose, CodePurpose::Reset);
            assert_eq!(*channel, Channel::Sms);
            assert_eq!(target, OTHER_MOBILE);
            assert_eq!(*expires_at, story.now() + Duration::minutes(5));
            assert_eq!(
                bound_to.as_deref(),
                Some(token_digest(DEFAULT_TOKEN).as_hex())
            );
        }
        other => panic!("expected one reset code, got {other:?}"),
    }
}

#[test]
fn a_reset_code_needs_the_channel_on_the_account() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    let result = story.run(send_code(DEFAULT_TOKEN, Channel::Email));
    assert!(
        matches!(result, Err(DomainError::VerificationMethodUnavailable(_))),
        "{result:?}"
    );
}

#[test]
fn the_reset_verification_methods_are_the_verified_recovery_channels() {
    use domain::account::VerificationMethod;
    assert_eq!(
        Story::email_account().state().reset_verification_methods(),
        vec![]
    );
    assert_eq!(
        account_with_recovery_mobile()
            .state()
            .reset_verification_methods(),
        vec![VerificationMethod::Sms]
    );
}

#[test]
fn a_reset_of_an_account_with_a_recovery_channel_needs_a_code() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    story.exec(send_code(DEFAULT_TOKEN, Channel::Sms));
    story
        .given()
        .when(complete(DEFAULT_TOKEN, fresh(1), None))
        .then_expect_error(DomainError::CodeRequired);
}

#[test]
fn a_reused_password_is_refused_before_the_code_is_looked_at() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    story.exec(send_code(DEFAULT_TOKEN, Channel::Sms));
    for code_value in [None, Some("000000"), Some(DEFAULT_CODE)] {
        story
            .given()
            .when(complete(DEFAULT_TOKEN, reused(1), code_value))
            .then_expect_error(DomainError::PasswordReused);
    }
}

#[test]
fn a_wrong_reset_code_is_recorded_and_the_token_still_works() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    story.exec(send_code(DEFAULT_TOKEN, Channel::Sms));
    let events = story.exec(complete(DEFAULT_TOKEN, fresh(1), Some("000000")));
    assert_eq!(
        events,
        vec![AccountEvent::VerificationFailed {
            code_id: "c-reset".into(),
            purpose: CodePurpose::Reset,
            failures: 1,
            at: story.now(),
        }]
    );
    assert_eq!(rejection(&events), Some(DomainError::InvalidCode));
    assert_eq!(
        story
            .state()
            .require_reset_token(&token_digest(DEFAULT_TOKEN), story.now()),
        Ok(())
    );
    story
        .given()
        .when(complete(DEFAULT_TOKEN, fresh(1), Some(DEFAULT_CODE)))
        .then_expect_events(vec![AccountEvent::PasswordReset {
            password_hash: hash("phc-new"),
            reset_at: story.now(),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }]);
}

#[test]
fn a_successful_reset_records_the_new_password_and_uses_up_the_token() {
    let mut story = account_with_recovery_mobile();
    story.exec(AccountCommand::IssueResetToken);
    story.exec(send_code(DEFAULT_TOKEN, Channel::Sms));
    let events = story.exec(complete(DEFAULT_TOKEN, fresh(1), Some(DEFAULT_CODE)));
    assert_eq!(
        events,
        vec![AccountEvent::PasswordReset {
            password_hash: hash("phc-new"),
            reset_at: story.now(),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }]
    );
    let state = story.state();
    assert_eq!(state.password_version(), 2);
    assert_eq!(
        state.recent_password_hashes(3).cloned().collect::<Vec<_>>(),
        vec![hash("phc-new"), hash(FIRST_HASH)]
    );
    story
        .given()
        .when(complete(DEFAULT_TOKEN, fresh(2), Some(DEFAULT_CODE)))
        .then_expect_error(DomainError::ResetTokenInvalid);
    story
        .given()
        .when(send_code(DEFAULT_TOKEN, Channel::Sms))
        .then_expect_error(DomainError::ResetTokenInvalid);
}

#[test]
fn a_reset_code_of_an_older_token_does_not_complete_a_newer_one() {
    let mut story = account_with_recovery_mobile();
    story.next_token("tok-a");
    story.exec(AccountCommand::IssueResetToken);
    story.exec(send_code("tok-a", Channel::Sms));
    story.next_token("tok-b");
    story.exec(AccountCommand::IssueResetToken);
    story
        .given()
        .when(complete("tok-b", fresh(1), Some(DEFAULT_CODE)))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn an_account_without_a_recovery_channel_completes_a_reset_without_a_code() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::IssueResetToken);
    story
        .given()
        .when(complete(DEFAULT_TOKEN, fresh(1), None))
        .then_expect_events(vec![AccountEvent::PasswordReset {
            password_hash: hash("phc-new"),
            reset_at: story.now(),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }]);
}

#[test]
fn a_reset_ends_every_step_up() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    story.exec(AccountCommand::IssueResetToken);
    story.exec(complete(DEFAULT_TOKEN, fresh(1), None));
    story
        .given()
        .when(AccountCommand::ChangeContactMobile {
            session_id: sid("s1"),
            mobile: mobile(OTHER_MOBILE),
            code_id: "c-1".into(),
        })
        .then_expect_error(DomainError::IdentityVerificationRequired);
}
