//! Changing the password: the order of checks, the version a check was made against, and the
//! history a new password must differ from.

mod support;

use domain::account::{rejection, PasswordChangeReason};
use domain::{AccountCommand, AccountEvent, DomainError, PasswordCheck, ReuseCheck};

use support::*;

fn change(current: PasswordCheck, reuse: ReuseCheck) -> AccountCommand {
    AccountCommand::ChangePassword {
        session_id: sid("s1"),
        current,
        reuse,
        new_hash: hash("phc-2"),
    }
}

#[test]
fn a_password_change_needs_a_step_up_before_anything_else() {
    let story = Story::email_account();
    story
        .given()
        .when(change(not_matching(1), reused(1)))
        .then_expect_error(DomainError::IdentityVerificationRequired);
    // No failed password check is recorded without a step-up either.
    story
        .given()
        .when(change(not_matching(1), fresh(1)))
        .then_expect_error(DomainError::IdentityVerificationRequired);
}

#[test]
fn an_account_without_a_login_email_is_told_to_bind_one_first() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story
        .given()
        .when(change(not_matching(0), reused(0)))
        .then_expect_error(DomainError::LoginEmailRequired);
}

#[test]
fn a_wrong_current_password_is_recorded_as_a_failed_check() {
    let mut story = Story::email_account();
    story.step_up("s1");
    let events = story.run(change(not_matching(1), fresh(1))).unwrap();
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
fn a_wrong_current_password_is_reported_before_a_reused_new_one() {
    let mut story = Story::email_account();
    story.step_up("s1");
    let events = story.run(change(not_matching(1), reused(1))).unwrap();
    assert_eq!(rejection(&events), Some(DomainError::InvalidCredentials));
}

#[test]
fn a_reused_password_is_refused() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story
        .given()
        .when(change(matching(1), reused(1)))
        .then_expect_error(DomainError::PasswordReused);
}

#[test]
fn a_password_change_records_the_new_hash() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story
        .given()
        .when(change(matching(1), fresh(1)))
        .then_expect_events(vec![AccountEvent::PasswordChanged {
            password_hash: hash("phc-2"),
            reason: PasswordChangeReason::Change,
            changed_at: story.now(),
            protection: Some(link(DEFAULT_TOKEN, story.now())),
        }]);
}

#[test]
fn a_password_change_bumps_the_version() {
    let mut story = Story::email_account();
    assert_eq!(story.state().password_version(), 1);
    story.change_password("phc-2");
    let state = story.state();
    assert_eq!(state.password_version(), 2);
    assert_eq!(state.password.unwrap().changed_at, story.now());
}

#[test]
fn a_current_password_check_against_another_version_is_stale() {
    let mut story = Story::email_account();
    story.change_password("phc-2");
    story.step_up("s1");
    // The command layer checked the password that was current before the change.
    story
        .given()
        .when(change(matching(1), fresh(1)))
        .then_expect_error(DomainError::StalePasswordCheck);
    story
        .given()
        .when(change(not_matching(1), fresh(2)))
        .then_expect_error(DomainError::StalePasswordCheck);
}

#[test]
fn a_reuse_check_against_another_version_is_stale() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story
        .given()
        .when(change(matching(1), fresh(0)))
        .then_expect_error(DomainError::StalePasswordCheck);
}

#[test]
fn the_recent_password_hashes_are_the_current_and_the_two_before_it_newest_first() {
    let mut story = Story::email_account();
    for next in ["phc-2", "phc-3", "phc-4", "phc-5"] {
        story.change_password(next);
    }
    let state = story.state();
    let recent: Vec<_> = state.recent_password_hashes(3).cloned().collect();
    assert_eq!(recent, vec![hash("phc-5"), hash("phc-4"), hash("phc-3")]);
}

#[test]
fn the_recent_password_hashes_of_a_new_account_are_its_one_password() {
    let state = Story::email_account().state();
    let recent: Vec<_> = state.recent_password_hashes(3).cloned().collect();
    assert_eq!(recent, vec![hash(FIRST_HASH)]);
}

#[test]
fn a_step_up_by_password_checks_the_version_too() {
    let mut story = Story::email_account();
    story.change_password("phc-2");
    story
        .given()
        .when(AccountCommand::ConfirmIdentityWithPassword {
            verification_id: "v1".into(),
            session_id: sid("s1"),
            check: matching(1),
        })
        .then_expect_error(DomainError::StalePasswordCheck);
}
