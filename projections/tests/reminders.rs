//! The 90-day password sweep (SPEC §2 "Passwords"): an account whose password is older than
//! 90 days is due for one reminder for that password, oldest first; once the reminder is
//! recorded it is not due again until a newer password crosses the age. Time is a test clock
//! injected into the write side.

#[macro_use]
mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::account::AccountEvent;
use domain::{AccountCommand, Clock};
use support::*;
use testkit::TestDatabase;

on_both_backends!(
    an_account_whose_password_is_older_than_90_days_is_due_for_one_reminder_per_password,
);

async fn due(env: &Env, now: DateTime<Utc>, limit: i64) -> Vec<String> {
    env.read
        .password_reminders_due(now, 90, limit)
        .await
        .expect("the reminder sweep query")
}

async fn an_account_whose_password_is_older_than_90_days_is_due_for_one_reminder_per_password(
    db: TestDatabase,
) {
    let env = Env::new(db).await;
    let clock = Arc::new(TestClock::new(t0()));
    let writer = Writer::new(env.store(), clock.clone());

    let ada = writer.register_with_email("ada@example.com").await; // password set at t0
    clock.advance(Duration::days(60));
    let bob = writer.register_with_email("bob@example.com").await; // at t0 + 60 days
    let carol = writer.register_with_mobile(&mobile(1)).await; // no password at all
    clock.advance(Duration::days(31));
    let now = clock.now(); // t0 + 91 days
    env.project().await;

    assert_eq!(due(&env, now, 100).await, vec![ada.to_string()]);
    // The profile recommends a change exactly where the sweep finds a reminder due.
    for (id, recommended) in [(&ada, true), (&bob, false), (&carol, false)] {
        let profile = writer.account(id).await.profile(now, 90).unwrap();
        assert_eq!(profile.password_change_recommended, recommended, "{id}");
    }
    // Exactly 90 days is not older than 90 days.
    assert!(due(&env, t0() + Duration::days(90), 100).await.is_empty());

    // The sweep records the reminder; the account is no longer due for this password.
    let reminded = writer
        .execute(&ada, AccountCommand::SendPasswordExpiryReminder)
        .await;
    assert!(matches!(
        reminded.events.as_slice(),
        [AccountEvent::PasswordExpiryReminderSent { .. }]
    ));
    env.project().await;
    assert!(due(&env, now, 100).await.is_empty());

    // Bob crosses 90 days in his turn.
    clock.advance(Duration::days(60)); // t0 + 151 days: his password is 91 days old
    env.project().await;
    assert_eq!(due(&env, clock.now(), 100).await, vec![bob.to_string()]);

    // A new password starts the age again, and is reminded once it crosses it.
    writer.change_password(&ada, 7).await;
    env.project().await;
    assert_eq!(due(&env, clock.now(), 100).await, vec![bob.to_string()]);
    clock.advance(Duration::days(91)); // t0 + 242 days
    let later = clock.now();
    assert_eq!(
        due(&env, later, 100).await,
        vec![bob.to_string(), ada.to_string()],
        "oldest password first"
    );
    assert_eq!(due(&env, later, 1).await, vec![bob.to_string()]);
    assert!(!due(&env, later, 100).await.contains(&carol.to_string()));
}
