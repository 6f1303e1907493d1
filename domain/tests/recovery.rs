//! Account recovery by account ID or server IP: five tries, fifteen minutes, closed once
//! confirmed, and a decoy that never confirms.

mod support;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::TestFramework;
use domain::account::RecoveryMethod;
use domain::{DomainError, Recovery, RecoveryCommand, RecoveryEvent};

use support::*;

const RECOVERY_ID: &str = "rec-1";

fn start(account: bool) -> RecoveryCommand {
    RecoveryCommand::Start {
        recovery_id: RECOVERY_ID.into(),
        method: RecoveryMethod::AccountId,
        account: account.then(|| (account_id(), mobile(LOGIN_MOBILE))),
        masked_mobile: "+86 138****8000".into(),
    }
}

fn confirm(value: &str) -> RecoveryCommand {
    RecoveryCommand::Confirm {
        mobile: mobile(value),
    }
}

/// The events of a recovery started at [`t0`] through the aggregate; `account: false` is a decoy.
fn started(account: bool) -> Vec<RecoveryEvent> {
    TestFramework::<Recovery>::with(services(t0()))
        .given_no_previous_events()
        .when(start(account))
        .inspect_result()
        .unwrap()
}

fn run(
    given: Vec<RecoveryEvent>,
    at: DateTime<Utc>,
    command: RecoveryCommand,
) -> Result<Vec<RecoveryEvent>, DomainError> {
    TestFramework::<Recovery>::with(services(at))
        .given(given)
        .when(command)
        .inspect_result()
}

#[test]
fn starting_a_recovery_records_it_for_fifteen_minutes() {
    assert_eq!(
        started(true),
        vec![RecoveryEvent::RecoveryStarted {
            recovery_id: RECOVERY_ID.into(),
            method: RecoveryMethod::AccountId,
            account_id: Some(account_id()),
            mobile: Some(mobile(LOGIN_MOBILE)),
            masked_mobile: "+86 138****8000".into(),
            expires_at: t0() + Duration::minutes(15),
        }]
    );
}

#[test]
fn the_right_full_number_confirms_the_recovery() {
    TestFramework::<Recovery>::with(services(t0() + Duration::minutes(14)))
        .given(started(true))
        .when(confirm(LOGIN_MOBILE))
        .then_expect_events(vec![RecoveryEvent::RecoveryConfirmed {
            account_id: account_id(),
            mobile: mobile(LOGIN_MOBILE),
        }]);
}

#[test]
fn a_wrong_number_is_a_failed_try() {
    TestFramework::<Recovery>::with(services(t0()))
        .given(started(true))
        .when(confirm(OTHER_MOBILE))
        .then_expect_events(vec![RecoveryEvent::RecoveryConfirmationFailed { tries: 1 }]);
}

#[test]
fn after_five_tries_the_recovery_is_closed() {
    let mut given = started(true);
    for n in 1..=5 {
        let events = run(given.clone(), t0(), confirm(OTHER_MOBILE)).unwrap();
        assert_eq!(
            events,
            vec![RecoveryEvent::RecoveryConfirmationFailed { tries: n }]
        );
        given.extend(events);
    }
    TestFramework::<Recovery>::with(services(t0()))
        .given(given)
        .when(confirm(LOGIN_MOBILE))
        .then_expect_error(DomainError::RecoveryClosed);
}

#[test]
fn after_fifteen_minutes_the_recovery_is_closed() {
    TestFramework::<Recovery>::with(services(t0() + Duration::minutes(15)))
        .given(started(true))
        .when(confirm(LOGIN_MOBILE))
        .then_expect_error(DomainError::RecoveryClosed);
}

#[test]
fn a_confirmed_recovery_is_closed() {
    let mut given = started(true);
    given.extend(run(given.clone(), t0(), confirm(LOGIN_MOBILE)).unwrap());
    TestFramework::<Recovery>::with(services(t0()))
        .given(given)
        .when(confirm(LOGIN_MOBILE))
        .then_expect_error(DomainError::RecoveryClosed);
}

#[test]
fn a_decoy_never_confirms_whatever_the_number() {
    for number in [LOGIN_MOBILE, OTHER_MOBILE, THIRD_MOBILE] {
        TestFramework::<Recovery>::with(services(t0()))
            .given(started(false))
            .when(confirm(number))
            .then_expect_events(vec![RecoveryEvent::RecoveryConfirmationFailed { tries: 1 }]);
    }
}

#[test]
fn a_decoy_closes_after_five_tries_like_a_real_recovery() {
    let mut given = started(false);
    for _ in 0..5 {
        given.extend(run(given.clone(), t0(), confirm(LOGIN_MOBILE)).unwrap());
    }
    TestFramework::<Recovery>::with(services(t0()))
        .given(given)
        .when(confirm(LOGIN_MOBILE))
        .then_expect_error(DomainError::RecoveryClosed);
}

#[test]
fn a_recovery_never_started_is_closed() {
    TestFramework::<Recovery>::with(services(t0()))
        .given_no_previous_events()
        .when(confirm(LOGIN_MOBILE))
        .then_expect_error(DomainError::RecoveryClosed);
}

#[test]
fn a_recovery_is_started_only_once() {
    TestFramework::<Recovery>::with(services(t0()))
        .given(started(true))
        .when(start(true))
        .then_expect_error(DomainError::Conflict);
}
