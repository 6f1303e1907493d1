//! The sign-up / sign-in SMS challenge: one code to one mobile for one purpose.

mod support;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::TestFramework;
use domain::{Challenge, ChallengeCommand, ChallengeEvent, CodePurpose, DomainError};

use support::*;

const CHALLENGE_ID: &str = "ch-1";

fn issue_command(purpose: CodePurpose) -> ChallengeCommand {
    ChallengeCommand::Issue {
        challenge_id: CHALLENGE_ID.into(),
        mobile: mobile(LOGIN_MOBILE),
        purpose,
    }
}

fn pass(mobile_value: &str, purpose: CodePurpose, code_value: &str) -> ChallengeCommand {
    ChallengeCommand::Pass {
        mobile: mobile(mobile_value),
        purpose,
        code: code(code_value),
        newest_request_at: None,
    }
}

/// The events of a challenge issued at [`t0`] through the aggregate.
fn issued(purpose: CodePurpose) -> Vec<ChallengeEvent> {
    TestFramework::<Challenge>::with(services(t0()))
        .given_no_previous_events()
        .when(issue_command(purpose))
        .inspect_result()
        .unwrap()
}

fn run(
    given: Vec<ChallengeEvent>,
    at: DateTime<Utc>,
    command: ChallengeCommand,
) -> Result<Vec<ChallengeEvent>, DomainError> {
    TestFramework::<Challenge>::with(services(at))
        .given(given)
        .when(command)
        .inspect_result()
}

#[test]
fn issuing_a_challenge_records_the_code_for_five_minutes() {
    let events = issued(CodePurpose::Signup);
    match events.as_slice() {
        [ChallengeEvent::ChallengeIssued {
            challenge_id,
            mobile: to,
            purpose,
            expires_at,
            sealed_code,
            ..
        }] => {
            assert_eq!(challenge_id, CHALLENGE_ID);
            assert_eq!(*to, mobile(LOGIN_MOBILE));
            assert_eq!(*purpose, CodePurpose::Signup);
            assert_eq!(*expires_at, t0() + Duration::minutes(5));
            assert_eq!(*sealed_code, sealed(DEFAULT_CODE));
        }
        other => panic!("expected one issue, got {other:?}"),
    }
}

#[test]
fn a_challenge_is_issued_only_once() {
    TestFramework::<Challenge>::with(services(t0()))
        .given(issued(CodePurpose::Signup))
        .when(issue_command(CodePurpose::Signup))
        .then_expect_error(DomainError::Conflict);
}

#[test]
fn the_right_code_for_the_same_mobile_and_purpose_passes_the_challenge() {
    TestFramework::<Challenge>::with(services(t0() + Duration::minutes(4)))
        .given(issued(CodePurpose::Login))
        .when(pass(LOGIN_MOBILE, CodePurpose::Login, DEFAULT_CODE))
        .then_expect_events(vec![ChallengeEvent::ChallengePassed {
            mobile: mobile(LOGIN_MOBILE),
            purpose: CodePurpose::Login,
        }]);
}

#[test]
fn a_wrong_code_is_recorded_and_answers_invalid_code() {
    let at = t0() + Duration::minutes(1);
    let events = run(
        issued(CodePurpose::Signup),
        at,
        pass(LOGIN_MOBILE, CodePurpose::Signup, "000000"),
    )
    .unwrap();
    assert_eq!(
        events,
        vec![ChallengeEvent::ChallengeFailed { failures: 1, at }]
    );
    assert_eq!(
        ChallengeEvent::rejection(&events),
        Some(DomainError::InvalidCode)
    );
}

#[test]
fn a_passed_challenge_is_not_a_rejection() {
    let events = run(
        issued(CodePurpose::Signup),
        t0(),
        pass(LOGIN_MOBILE, CodePurpose::Signup, DEFAULT_CODE),
    )
    .unwrap();
    assert_eq!(ChallengeEvent::rejection(&events), None);
}

#[test]
fn a_signup_code_does_not_pass_a_login_challenge() {
    let events = run(
        issued(CodePurpose::Signup),
        t0(),
        pass(LOGIN_MOBILE, CodePurpose::Login, DEFAULT_CODE),
    )
    .unwrap();
    assert_eq!(
        ChallengeEvent::rejection(&events),
        Some(DomainError::InvalidCode)
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, ChallengeEvent::ChallengePassed { .. })));
}

#[test]
fn a_code_sent_to_one_mobile_does_not_pass_for_another() {
    let events = run(
        issued(CodePurpose::Signup),
        t0(),
        pass(OTHER_MOBILE, CodePurpose::Signup, DEFAULT_CODE),
    )
    .unwrap();
    assert_eq!(
        ChallengeEvent::rejection(&events),
        Some(DomainError::InvalidCode)
    );
}

#[test]
fn an_expired_challenge_answers_code_expired() {
    for age in [Duration::minutes(5), Duration::hours(2)] {
        TestFramework::<Challenge>::with(services(t0() + age))
            .given(issued(CodePurpose::Signup))
            .when(pass(LOGIN_MOBILE, CodePurpose::Signup, DEFAULT_CODE))
            .then_expect_error(DomainError::CodeExpired);
    }
}

#[test]
fn a_passed_challenge_cannot_be_used_again() {
    let mut given = issued(CodePurpose::Login);
    given.extend(
        run(
            given.clone(),
            t0(),
            pass(LOGIN_MOBILE, CodePurpose::Login, DEFAULT_CODE),
        )
        .unwrap(),
    );
    TestFramework::<Challenge>::with(services(t0()))
        .given(given)
        .when(pass(LOGIN_MOBILE, CodePurpose::Login, DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn the_fifth_wrong_attempt_kills_the_challenge() {
    let mut given = issued(CodePurpose::Signup);
    for n in 1..=5 {
        let events = run(
            given.clone(),
            t0(),
            pass(LOGIN_MOBILE, CodePurpose::Signup, "000000"),
        )
        .unwrap();
        assert_eq!(
            events,
            vec![ChallengeEvent::ChallengeFailed {
                failures: n,
                at: t0(),
            }]
        );
        given.extend(events);
    }
    TestFramework::<Challenge>::with(services(t0()))
        .given(given)
        .when(pass(LOGIN_MOBILE, CodePurpose::Signup, DEFAULT_CODE))
        .then_expect_error(DomainError::CodeExpired);
}

#[test]
fn a_challenge_never_issued_answers_invalid_code_and_records_nothing() {
    TestFramework::<Challenge>::with(services(t0()))
        .given_no_previous_events()
        .when(pass(LOGIN_MOBILE, CodePurpose::Signup, DEFAULT_CODE))
        .then_expect_error(DomainError::InvalidCode);
}

#[test]
fn a_challenge_replaced_by_a_newer_request_answers_code_expired() {
    let newer = ChallengeCommand::Pass {
        mobile: mobile(LOGIN_MOBILE),
        purpose: CodePurpose::Login,
        code: code(DEFAULT_CODE),
        newest_request_at: Some(t0() + Duration::seconds(61)),
    };
    let result = run(
        issued(CodePurpose::Login),
        t0() + Duration::seconds(62),
        newer,
    );
    assert_eq!(result, Err(DomainError::CodeExpired));
}

#[test]
fn the_request_that_issued_a_challenge_does_not_replace_it() {
    let own = ChallengeCommand::Pass {
        mobile: mobile(LOGIN_MOBILE),
        purpose: CodePurpose::Login,
        code: code(DEFAULT_CODE),
        newest_request_at: Some(t0() - Duration::milliseconds(5)),
    };
    let events = run(
        issued(CodePurpose::Login),
        t0() + Duration::seconds(10),
        own,
    )
    .unwrap();
    assert!(matches!(
        events.as_slice(),
        [ChallengeEvent::ChallengePassed { .. }]
    ));
}
