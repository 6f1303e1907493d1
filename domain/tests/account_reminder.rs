//! The one reminder sent when a password crosses 90 days.

mod support;

use chrono::Duration;
use domain::{AccountCommand, AccountEvent};

use support::*;

fn remind(story: &Story) -> Vec<AccountEvent> {
    story
        .run(AccountCommand::SendPasswordExpiryReminder)
        .unwrap()
}

#[test]
fn no_reminder_before_ninety_days() {
    let story = Story::email_account();
    for age in [Duration::zero(), Duration::days(89), Duration::days(90)] {
        story.set_now(t0() + age);
        assert_eq!(remind(&story), vec![], "at {age}");
    }
}

#[test]
fn one_reminder_once_the_password_is_older_than_ninety_days() {
    let story = Story::email_account();
    story.set_now(t0() + Duration::days(90) + Duration::minutes(1));
    story
        .given()
        .when(AccountCommand::SendPasswordExpiryReminder)
        .then_expect_events(vec![AccountEvent::PasswordExpiryReminderSent {
            password_changed_at: t0(),
        }]);
}

#[test]
fn the_reminder_is_sent_only_once_per_password() {
    let mut story = Story::email_account();
    story.set_now(t0() + Duration::days(91));
    story.exec(AccountCommand::SendPasswordExpiryReminder);
    assert_eq!(remind(&story), vec![]);
    story.advance(Duration::days(100));
    assert_eq!(remind(&story), vec![]);
}

#[test]
fn a_changed_password_is_reminded_of_again_after_ninety_days() {
    let mut story = Story::email_account();
    story.set_now(t0() + Duration::days(91));
    story.exec(AccountCommand::SendPasswordExpiryReminder);
    story.change_password("phc-2");
    let changed_at = story.now();

    story.advance(Duration::days(89));
    assert_eq!(remind(&story), vec![]);
    story.advance(Duration::days(2));
    assert_eq!(
        remind(&story),
        vec![AccountEvent::PasswordExpiryReminderSent {
            password_changed_at: changed_at,
        }]
    );
}

#[test]
fn an_account_without_a_password_is_never_reminded() {
    let story = Story::mobile_account();
    story.set_now(t0() + Duration::days(365));
    assert_eq!(remind(&story), vec![]);
}
