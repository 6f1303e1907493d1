//! Five consecutive failed password checks within fifteen minutes lock password sign-in for
//! fifteen minutes; a success resets the count.

mod support;

use chrono::Duration;
use domain::account::{rejection, VerificationMethod};
use domain::{AccountCommand, AccountEvent, DomainError};

use support::*;

fn sign_in(matches: bool, version: u32) -> AccountCommand {
    AccountCommand::SignInWithPassword {
        check: if matches {
            matching(version)
        } else {
            not_matching(version)
        },
        session_id: sid("s1"),
        new_client: None,
    }
}

fn fail_times(story: &mut Story, n: u32, gap: Duration) {
    for _ in 0..n {
        story.fail_sign_in();
        story.advance(gap);
    }
}

#[test]
fn a_right_password_signs_in() {
    let story = Story::email_account();
    story
        .given()
        .when(sign_in(true, 1))
        .then_expect_events(vec![AccountEvent::SignedIn {
            method: VerificationMethod::Password,
            session_id: sid("s1"),
            at: story.now(),
            new_client: None,
        }]);
}

#[test]
fn each_failed_check_counts_the_consecutive_failures() {
    let mut story = Story::email_account();
    for n in 1..=4 {
        let events = story.fail_sign_in();
        assert_eq!(
            events,
            vec![AccountEvent::SignInFailed {
                consecutive_failures: n,
                at: story.now(),
            }]
        );
        assert_eq!(rejection(&events), Some(DomainError::InvalidCredentials));
        story.advance(Duration::minutes(1));
    }
}

#[test]
fn the_fifth_consecutive_failure_within_fifteen_minutes_locks_for_fifteen_minutes() {
    let mut story = Story::email_account();
    fail_times(&mut story, 4, Duration::minutes(3));
    // The first failure was 12 minutes ago.
    let events = story.run(sign_in(false, 1)).unwrap();
    assert_eq!(
        events,
        vec![
            AccountEvent::SignInFailed {
                consecutive_failures: 5,
                at: story.now(),
            },
            AccountEvent::SignInLocked {
                until: story.now() + Duration::minutes(15),
            },
        ]
    );
    assert_eq!(rejection(&events), Some(DomainError::InvalidCredentials));
}

#[test]
fn while_locked_even_the_right_password_is_refused() {
    let mut story = Story::email_account();
    fail_times(&mut story, 5, Duration::zero());
    let until = story.now() + Duration::minutes(15);
    story.advance(Duration::minutes(14));
    story
        .given()
        .when(sign_in(true, 1))
        .then_expect_error(DomainError::Locked { until });
    // The lock covers every password check, not only sign-in.
    story
        .given()
        .when(AccountCommand::ConfirmIdentityWithPassword {
            verification_id: "v1".into(),
            session_id: sid("s1"),
            check: matching(1),
        })
        .then_expect_error(DomainError::Locked { until });
}

#[test]
fn after_fifteen_minutes_the_lock_is_over() {
    let mut story = Story::email_account();
    fail_times(&mut story, 5, Duration::zero());
    story.advance(Duration::minutes(15));
    story
        .given()
        .when(sign_in(true, 1))
        .then_expect_events(vec![AccountEvent::SignedIn {
            method: VerificationMethod::Password,
            session_id: sid("s1"),
            at: story.now(),
            new_client: None,
        }]);
}

#[test]
fn after_a_lock_the_count_starts_again() {
    let mut story = Story::email_account();
    fail_times(&mut story, 5, Duration::zero());
    story.advance(Duration::minutes(15));
    let events = story.run(sign_in(false, 1)).unwrap();
    assert_eq!(
        events,
        vec![AccountEvent::SignInFailed {
            consecutive_failures: 1,
            at: story.now(),
        }]
    );
}

#[test]
fn a_success_in_between_resets_the_count() {
    let mut story = Story::email_account();
    fail_times(&mut story, 4, Duration::minutes(1));
    story.sign_in();
    fail_times(&mut story, 3, Duration::minutes(1));
    let events = story.run(sign_in(false, 1)).unwrap();
    assert_eq!(
        events,
        vec![AccountEvent::SignInFailed {
            consecutive_failures: 4,
            at: story.now(),
        }]
    );
    assert_eq!(story.state().locked_until(story.now()), None);
}

#[test]
fn a_successful_step_up_by_password_resets_the_count() {
    let mut story = Story::email_account();
    fail_times(&mut story, 4, Duration::minutes(1));
    story.step_up_by_password("s1");
    let events = story.run(sign_in(false, 1)).unwrap();
    assert_eq!(
        events,
        vec![AccountEvent::SignInFailed {
            consecutive_failures: 1,
            at: story.now(),
        }]
    );
}

#[test]
fn failures_older_than_fifteen_minutes_do_not_count() {
    let mut story = Story::email_account();
    fail_times(&mut story, 4, Duration::zero());
    story.advance(Duration::minutes(15));
    let events = story.run(sign_in(false, 1)).unwrap();
    assert_eq!(
        events,
        vec![AccountEvent::SignInFailed {
            consecutive_failures: 1,
            at: story.now(),
        }]
    );
}

#[test]
fn failed_checks_of_every_kind_count_towards_the_lock() {
    let mut story = Story::email_account();
    // Stepped up before the failures, so that the change below can be tried.
    story.step_up_by_password("s2");
    story.fail_sign_in();
    story.fail_sign_in();
    // A wrong step-up password…
    story.exec(AccountCommand::ConfirmIdentityWithPassword {
        verification_id: "v1".into(),
        session_id: sid("s1"),
        check: not_matching(1),
    });
    // …and a wrong current password on a change.
    story.exec(AccountCommand::ChangePassword {
        session_id: sid("s2"),
        current: not_matching(1),
        reuse: fresh(1),
        new_hash: hash("phc-2"),
    });
    let events = story.run(sign_in(false, 1)).unwrap();
    assert_eq!(
        events,
        vec![
            AccountEvent::SignInFailed {
                consecutive_failures: 5,
                at: story.now(),
            },
            AccountEvent::SignInLocked {
                until: story.now() + Duration::minutes(15),
            },
        ]
    );
}

#[test]
fn a_password_reset_lifts_the_lock() {
    let mut story = Story::email_account();
    fail_times(&mut story, 5, Duration::zero());
    story.exec(AccountCommand::IssueResetToken);
    story.exec(AccountCommand::CompleteReset {
        token_digest: token_digest(DEFAULT_TOKEN),
        reuse: fresh(1),
        new_hash: hash("phc-2"),
        code: None,
    });
    assert_eq!(story.state().locked_until(story.now()), None);
    story
        .given()
        .when(sign_in(true, 2))
        .then_expect_events(vec![AccountEvent::SignedIn {
            method: VerificationMethod::Password,
            session_id: sid("s1"),
            at: story.now(),
            new_client: None,
        }]);
}
