//! Persisted names never change: the aggregate types and event types are written out here
//! literally, so that a rename fails this test instead of orphaning stored rows.

mod support;

use chrono::Duration;
use cqrs_es::{Aggregate, DomainEvent};
use domain::account::{
    AccountSummary, NewClient, PasswordChangeReason, ProtectedChange, RecoveryMethod,
    UnfreezeReason, Verifiable, VerificationMethod,
};
use domain::stored::{from_payload, to_payload};
use domain::{
    Account, AccountEvent, Challenge, ChallengeEvent, Channel, CodePurpose, Digest, Recovery,
    RecoveryEvent,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use support::*;

const ACCOUNT_EVENT_TYPES: [&str; 29] = [
    "AccountRegistered",
    "VerificationCodeIssued",
    "VerificationFailed",
    "IdentityVerified",
    "ContactMobileChanged",
    "ContactEmailChanged",
    "ContactMobileVerified",
    "ContactEmailVerified",
    "RecoveryMobileChangeRequested",
    "RecoveryEmailChangeRequested",
    "RecoveryMobileChanged",
    "RecoveryEmailChanged",
    "LoginEmailBindingRequested",
    "LoginEmailBound",
    "PasswordChanged",
    "ResetTokenIssued",
    "PasswordReset",
    "SignedIn",
    "SignInFailed",
    "SignInLocked",
    "AccountRecoveryRequested",
    "AccountRecoveryConfirmationFailed",
    "AccountInfoSent",
    "ServerIpAssigned",
    "ServerIpReleased",
    "PasswordExpiryReminderSent",
    "AccountFrozen",
    "ChangeReverted",
    "AccountUnfrozen",
];

const CHALLENGE_EVENT_TYPES: [&str; 3] = ["ChallengeIssued", "ChallengeFailed", "ChallengePassed"];

const RECOVERY_EVENT_TYPES: [&str; 3] = [
    "RecoveryStarted",
    "RecoveryConfirmationFailed",
    "RecoveryConfirmed",
];

/// One sample of every account event, in the order of [`ACCOUNT_EVENT_TYPES`].
fn account_event_samples() -> Vec<AccountEvent> {
    let at = t0();
    vec![
        AccountEvent::AccountRegistered {
            account_id: account_id(),
            login_email: Some(email(LOGIN_EMAIL)),
            login_mobile: Some(mobile(LOGIN_MOBILE)),
            contact_mobile: Some(Verifiable {
                value: mobile(LOGIN_MOBILE),
                verified: true,
            }),
            contact_email: Some(Verifiable {
                value: email(LOGIN_EMAIL),
                verified: false,
            }),
            recovery_mobile: Some(mobile(LOGIN_MOBILE)),
            password_hash: Some(hash(FIRST_HASH)),
            registered_at: at,
        },
        AccountEvent::VerificationCodeIssued {
            code_id: "c-1".into(),
            purpose: CodePurpose::StepUp,
            channel: Channel::Sms,
            target: LOGIN_MOBILE.into(),
            code_digest: Digest::from_hex("ab12"),
            sealed_code: sealed(DEFAULT_CODE),
            expires_at: at + Duration::minutes(5),
            bound_to: Some("s1".into()),
        },
        AccountEvent::VerificationFailed {
            code_id: "c-1".into(),
            purpose: CodePurpose::LoginEmail,
            failures: 2,
            at,
        },
        AccountEvent::IdentityVerified {
            verification_id: "v-1".into(),
            method: VerificationMethod::Email,
            session_id: sid("s1"),
            verified_until: at + Duration::minutes(10),
        },
        AccountEvent::ContactMobileChanged {
            previous: Some(mobile(LOGIN_MOBILE)),
            mobile: mobile(OTHER_MOBILE),
            protection: Some(link("p1", at)),
        },
        AccountEvent::ContactEmailChanged {
            previous: None,
            email: email("b@example.com"),
            protection: None,
        },
        AccountEvent::ContactMobileVerified {
            mobile: mobile(OTHER_MOBILE),
        },
        AccountEvent::ContactEmailVerified {
            email: email("b@example.com"),
        },
        AccountEvent::RecoveryMobileChangeRequested {
            mobile: mobile(THIRD_MOBILE),
        },
        AccountEvent::RecoveryEmailChangeRequested {
            email: email("r@example.com"),
        },
        AccountEvent::RecoveryMobileChanged {
            previous: Some(mobile(LOGIN_MOBILE)),
            mobile: mobile(THIRD_MOBILE),
            protection: Some(link("p2", at)),
        },
        AccountEvent::RecoveryEmailChanged {
            previous: None,
            email: email("r@example.com"),
            protection: Some(link("p3", at)),
        },
        AccountEvent::LoginEmailBindingRequested {
            email: email("m@example.com"),
            password_hash: Some(hash("phc-m")),
        },
        AccountEvent::LoginEmailBound {
            email: email("m@example.com"),
            protection: Some(link("p4", at)),
        },
        AccountEvent::PasswordChanged {
            password_hash: hash("phc-2"),
            reason: PasswordChangeReason::LoginEmailBound,
            changed_at: at,
            protection: Some(link("p5", at)),
        },
        AccountEvent::ResetTokenIssued {
            token_digest: token_digest(DEFAULT_TOKEN),
            sealed_token: sealed(DEFAULT_TOKEN),
            login_email: email(LOGIN_EMAIL),
            expires_at: at + Duration::minutes(30),
        },
        AccountEvent::PasswordReset {
            password_hash: hash("phc-3"),
            reset_at: at,
            protection: Some(link("p6", at)),
        },
        AccountEvent::SignedIn {
            method: VerificationMethod::Password,
            session_id: sid("s2"),
            at,
            new_client: Some(NewClient {
                ip: Some("198.51.100.4".parse().unwrap()),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0".into()),
                protection: link("p7", at),
            }),
        },
        AccountEvent::SignInFailed {
            consecutive_failures: 3,
            at,
        },
        AccountEvent::SignInLocked {
            until: at + Duration::minutes(15),
        },
        AccountEvent::AccountRecoveryRequested {
            method: RecoveryMethod::ServerIp,
            recovery_id: Some("rec-1".into()),
        },
        AccountEvent::AccountRecoveryConfirmationFailed {
            recovery_id: "rec-1".into(),
        },
        AccountEvent::AccountInfoSent {
            message_id: "msg-1".into(),
            mobile: mobile(LOGIN_MOBILE),
            accounts: vec![AccountSummary {
                account_id: account_id(),
                masked_login_email: Some("a***@example.com".into()),
            }],
        },
        AccountEvent::ServerIpAssigned {
            instance_id: "ins-1".into(),
            public_ip: ip("203.0.113.7"),
            assigned_at: at,
        },
        AccountEvent::ServerIpReleased {
            instance_id: "ins-1".into(),
            public_ip: ip("2001:db8::7"),
            released_at: at,
        },
        AccountEvent::PasswordExpiryReminderSent {
            password_changed_at: at,
        },
        AccountEvent::AccountFrozen {
            change: ProtectedChange::RecoveryMobile {
                previous: Some(mobile(LOGIN_MOBILE)),
                mobile: mobile(THIRD_MOBILE),
            },
            token_digest: token_digest(&protection_token("p2")),
            frozen_at: at,
        },
        AccountEvent::ChangeReverted {
            change: ProtectedChange::ContactMobile {
                previous: Some(Verifiable {
                    value: mobile(LOGIN_MOBILE),
                    verified: true,
                }),
                mobile: mobile(OTHER_MOBILE),
            },
            reverted_at: at,
        },
        AccountEvent::AccountUnfrozen {
            reason: UnfreezeReason::PasswordReset,
            unfrozen_at: at,
        },
    ]
}

fn challenge_event_samples() -> Vec<ChallengeEvent> {
    vec![
        ChallengeEvent::ChallengeIssued {
            challenge_id: "ch-1".into(),
            mobile: mobile(LOGIN_MOBILE),
            purpose: CodePurpose::Signup,
            code_digest: Digest::from_hex("cd34"),
            sealed_code: sealed(DEFAULT_CODE),
            expires_at: t0() + Duration::minutes(5),
        },
        ChallengeEvent::ChallengeFailed {
            failures: 1,
            at: t0(),
        },
        ChallengeEvent::ChallengePassed {
            mobile: mobile(LOGIN_MOBILE),
            purpose: CodePurpose::Login,
        },
    ]
}

fn recovery_event_samples() -> Vec<RecoveryEvent> {
    vec![
        RecoveryEvent::RecoveryStarted {
            recovery_id: "rec-1".into(),
            method: RecoveryMethod::AccountId,
            account_id: Some(account_id()),
            mobile: Some(mobile(LOGIN_MOBILE)),
            masked_mobile: "+86 138****8000".into(),
            expires_at: t0() + Duration::minutes(15),
        },
        RecoveryEvent::RecoveryConfirmationFailed { tries: 2 },
        RecoveryEvent::RecoveryConfirmed {
            account_id: account_id(),
            mobile: mobile(LOGIN_MOBILE),
        },
    ]
}

/// Each sample is stored under its pinned name and read back equal.
fn assert_round_trips<E>(samples: Vec<E>, pinned: &[&str])
where
    E: DomainEvent + Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    assert_eq!(samples.len(), pinned.len(), "one sample per event type");
    for (event, name) in samples.into_iter().zip(pinned) {
        assert_eq!(event.event_type(), *name);
        assert_eq!(event.event_version(), "1");
        let payload = to_payload(&event).unwrap();
        assert!(
            payload.is_object(),
            "{name}: the payload holds the fields, not the tag: {payload}"
        );
        assert!(
            payload.get(*name).is_none(),
            "{name}: tag left in {payload}"
        );
        let back: E = from_payload(name, "1", payload).unwrap();
        assert_eq!(back, event, "{name}");
    }
}

#[test]
fn aggregate_types_never_change() {
    assert_eq!(Account::TYPE, "Account");
    assert_eq!(Challenge::TYPE, "Challenge");
    assert_eq!(Recovery::TYPE, "Recovery");
}

#[test]
fn account_event_types_never_change() {
    assert_eq!(AccountEvent::TYPES, ACCOUNT_EVENT_TYPES);
}

#[test]
fn challenge_event_types_never_change() {
    assert_eq!(ChallengeEvent::TYPES, CHALLENGE_EVENT_TYPES);
}

#[test]
fn recovery_event_types_never_change() {
    assert_eq!(RecoveryEvent::TYPES, RECOVERY_EVENT_TYPES);
}

#[test]
fn every_account_event_is_stored_under_its_pinned_name_and_read_back_equal() {
    assert_round_trips(account_event_samples(), &ACCOUNT_EVENT_TYPES);
}

#[test]
fn every_challenge_event_is_stored_under_its_pinned_name_and_read_back_equal() {
    assert_round_trips(challenge_event_samples(), &CHALLENGE_EVENT_TYPES);
}

#[test]
fn every_recovery_event_is_stored_under_its_pinned_name_and_read_back_equal() {
    assert_round_trips(recovery_event_samples(), &RECOVERY_EVENT_TYPES);
}

#[test]
fn a_payload_read_under_another_name_is_not_the_same_event() {
    let event = AccountEvent::ContactMobileVerified {
        mobile: mobile(LOGIN_MOBILE),
    };
    let payload = to_payload(&event).unwrap();
    let read: Result<AccountEvent, _> = from_payload("RecoveryMobileChangeRequested", "1", payload);
    assert_ne!(read.ok(), Some(event));
}

#[test]
fn enum_values_inside_payloads_keep_their_stored_spelling() {
    let payload = to_payload(&account_event_samples()[1]).unwrap();
    assert_eq!(payload["purpose"], "step_up");
    assert_eq!(payload["channel"], "sms");
    let payload = to_payload(&account_event_samples()[14]).unwrap();
    assert_eq!(payload["reason"], "login_email_bound");
    let payload = to_payload(&account_event_samples()[20]).unwrap();
    assert_eq!(payload["method"], "server_ip");
    let payload = to_payload(&account_event_samples()[26]).unwrap();
    assert_eq!(payload["change"]["kind"], "recovery_mobile");
    let payload = to_payload(&account_event_samples()[27]).unwrap();
    assert_eq!(payload["change"]["kind"], "contact_mobile");
    let payload = to_payload(&account_event_samples()[28]).unwrap();
    assert_eq!(payload["reason"], "password_reset");
    let payload = to_payload(&account_event_samples()[10]).unwrap();
    assert!(payload["protection"]["token_digest"].is_string());
    let payload = to_payload(&account_event_samples()[17]).unwrap();
    assert_eq!(payload["new_client"]["ip"], "198.51.100.4");
    assert!(payload["new_client"]["protection"]["sealed_token"].is_object());
    let stored: Vec<&str> = CodePurpose::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        stored,
        [
            "signup",
            "login",
            "step_up",
            "contact",
            "recovery",
            "login_email",
            "reset"
        ]
    );
}

#[test]
fn change_events_stored_before_protection_links_read_back_without_one() {
    let stored = serde_json::json!({"previous": null, "mobile": LOGIN_MOBILE});
    let read: AccountEvent = from_payload("RecoveryMobileChanged", "1", stored.clone()).unwrap();
    assert_eq!(
        read,
        AccountEvent::RecoveryMobileChanged {
            previous: None,
            mobile: mobile(LOGIN_MOBILE),
            protection: None,
        }
    );
    // Written back, such an event keeps the payload it was stored with (and so its chain hash).
    assert_eq!(to_payload(&read).unwrap(), stored);
}

#[test]
fn sign_ins_stored_before_new_sign_in_notices_read_back_without_a_new_client() {
    let stored = serde_json::json!({
        "method": "password", "session_id": "s2", "at": "2026-01-05T10:00:00Z"
    });
    let read: AccountEvent = from_payload("SignedIn", "1", stored.clone()).unwrap();
    assert!(matches!(
        read,
        AccountEvent::SignedIn {
            new_client: None,
            ..
        }
    ));
    // Written back unchanged, so its chain hash does not move.
    assert_eq!(to_payload(&read).unwrap(), stored);
}
