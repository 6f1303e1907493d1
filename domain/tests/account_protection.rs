//! "This wasn't me" (docs/adr/0009): every change that sends a security notice carries a
//! single-use link; following it freezes the account, ends its step-ups and pending changes,
//! and restores the value the change replaced while the change still stands; a completed reset
//! unfreezes it.

mod support;

use chrono::Duration;
use domain::account::{ProtectedChange, UnfreezeReason, Verifiable};
use domain::{AccountCommand, AccountEvent, Channel, DomainError};

use support::*;

fn freeze(random: &str) -> AccountCommand {
    AccountCommand::FreezeAccount {
        token_digest: token_digest(&protection_token(random)),
    }
}

/// A mobile account (recovery mobile `LOGIN_MOBILE`) whose recovery mobile an intruder changed
/// to `OTHER_MOBILE`; the change's link is minted from token `hostile`.
fn hijacked_recovery_mobile() -> Story {
    let mut story = Story::mobile_account();
    story.next_token("hostile");
    story.set_recovery_mobile(OTHER_MOBILE);
    story
}

fn recovery_mobile_change() -> ProtectedChange {
    ProtectedChange::RecoveryMobile {
        previous: Some(mobile(LOGIN_MOBILE)),
        mobile: mobile(OTHER_MOBILE),
    }
}

#[test]
fn a_recovery_mobile_change_carries_the_link_of_its_notice() {
    let story = hijacked_recovery_mobile();
    let changed = story
        .events
        .iter()
        .find(|e| matches!(e, AccountEvent::RecoveryMobileChanged { .. }))
        .cloned();
    assert_eq!(
        changed,
        Some(AccountEvent::RecoveryMobileChanged {
            previous: Some(mobile(LOGIN_MOBILE)),
            mobile: mobile(OTHER_MOBILE),
            protection: Some(link("hostile", story.now())),
        })
    );
}

#[test]
fn following_the_link_freezes_the_account_and_restores_the_previous_recovery_mobile() {
    let mut story = hijacked_recovery_mobile();
    let events = story.exec(freeze("hostile"));
    assert_eq!(
        events,
        vec![
            AccountEvent::AccountFrozen {
                change: recovery_mobile_change(),
                token_digest: token_digest(&protection_token("hostile")),
                frozen_at: story.now(),
            },
            AccountEvent::ChangeReverted {
                change: recovery_mobile_change(),
                reverted_at: story.now(),
            },
        ]
    );
    let state = story.state();
    assert_eq!(state.recovery_mobile, Some(mobile(LOGIN_MOBILE)));
    assert!(state.is_frozen());
    assert!(state.profile(story.now(), 90).unwrap().frozen);
}

#[test]
fn a_link_works_only_once() {
    let mut story = hijacked_recovery_mobile();
    story.exec(freeze("hostile"));
    story
        .given()
        .when(freeze("hostile"))
        .then_expect_error(DomainError::ProtectionTokenInvalid);
}

#[test]
fn a_link_that_is_not_one_of_this_accounts_notices_is_refused() {
    let story = hijacked_recovery_mobile();
    story
        .given()
        .when(freeze("never-issued"))
        .then_expect_error(DomainError::ProtectionTokenInvalid);
    // The digest of another account's token with the same random part.
    story
        .given()
        .when(AccountCommand::FreezeAccount {
            token_digest: token_digest("100000000002.hostile"),
        })
        .then_expect_error(DomainError::ProtectionTokenInvalid);
}

#[test]
fn a_link_lives_seven_days() {
    let story = hijacked_recovery_mobile();
    story.advance(Duration::days(7) - Duration::seconds(1));
    assert!(story.run(freeze("hostile")).is_ok());
    story.advance(Duration::seconds(1));
    story
        .given()
        .when(freeze("hostile"))
        .then_expect_error(DomainError::ProtectionTokenInvalid);
}

#[test]
fn a_link_of_an_earlier_change_freezes_but_never_overwrites_a_later_one() {
    let mut story = hijacked_recovery_mobile();
    story.advance(Duration::minutes(1));
    story.next_token("later");
    story.set_recovery_mobile(THIRD_MOBILE);
    let events = story.exec(freeze("hostile"));
    assert_eq!(
        events,
        vec![AccountEvent::AccountFrozen {
            change: recovery_mobile_change(),
            token_digest: token_digest(&protection_token("hostile")),
            frozen_at: story.now(),
        }]
    );
    assert_eq!(story.state().recovery_mobile, Some(mobile(THIRD_MOBILE)));
    // The later change's own link still works, and reverts it to the value before it.
    let events = story.exec(freeze("later"));
    assert!(events.contains(&AccountEvent::ChangeReverted {
        change: ProtectedChange::RecoveryMobile {
            previous: Some(mobile(OTHER_MOBILE)),
            mobile: mobile(THIRD_MOBILE),
        },
        reverted_at: story.now(),
    }));
    assert_eq!(story.state().recovery_mobile, Some(mobile(OTHER_MOBILE)));
}

#[test]
fn a_frozen_account_refuses_every_sensitive_change_even_after_a_step_up() {
    let mut story = Story::email_account();
    story.step_up_by_password("s1");
    story.next_token("pw");
    story.change_password("phc-2");
    story.exec(freeze("pw"));
    for command in gated_commands("s1") {
        story
            .given()
            .when(command)
            .then_expect_error(DomainError::AccountFrozen);
    }
    // A step-up made after the freeze does not help either.
    story.exec(AccountCommand::ConfirmIdentityWithPassword {
        verification_id: "v-after".into(),
        session_id: sid("s2"),
        check: matching(2),
    });
    for command in gated_commands("s2") {
        story
            .given()
            .when(command)
            .then_expect_error(DomainError::AccountFrozen);
    }
}

#[test]
fn a_frozen_account_refuses_password_sign_in_but_still_counts_wrong_passwords() {
    let mut story = Story::email_account();
    story.next_token("pw");
    story.change_password("phc-2");
    story.exec(freeze("pw"));
    story
        .given()
        .when(AccountCommand::SignInWithPassword {
            check: matching(2),
            session_id: sid("again"),
            new_client: None,
        })
        .then_expect_error(DomainError::AccountFrozen);
    let events = story.fail_sign_in();
    assert!(matches!(events[..], [AccountEvent::SignInFailed { .. }]));
}

#[test]
fn a_password_change_cannot_be_reverted_only_frozen() {
    let mut story = Story::email_account();
    story.next_token("pw");
    story.change_password("phc-2");
    let events = story.exec(freeze("pw"));
    assert_eq!(
        events,
        vec![AccountEvent::AccountFrozen {
            change: ProtectedChange::Password,
            token_digest: token_digest(&protection_token("pw")),
            frozen_at: story.now(),
        }]
    );
    assert_eq!(story.state().password_version(), 2);
}

#[test]
fn a_freeze_ends_step_ups_pending_changes_and_the_live_reset_link() {
    let mut story = hijacked_recovery_mobile();
    story.step_up("s1");
    story.exec(AccountCommand::RequestRecoveryEmailChange {
        session_id: sid("s1"),
        email: email("intruder@example.com"),
        code_id: "c-re".into(),
    });
    story.exec(freeze("hostile"));
    let state = story.state();
    assert!(!state.is_verified(&sid("s1"), story.now()));
    assert_eq!(state.pending_recovery_email, None);
    story
        .given()
        .when(AccountCommand::ConfirmRecoveryChange {
            channel: Channel::Email,
            code: code(DEFAULT_CODE),
        })
        .then_expect_error(DomainError::CodeExpired);

    let mut story = Story::email_account();
    story.next_token("pw");
    story.change_password("phc-2");
    story.next_token("reset-before");
    story.exec(AccountCommand::IssueResetToken);
    story.exec(freeze("pw"));
    assert_eq!(
        story
            .state()
            .require_reset_token(&token_digest("reset-before"), story.now()),
        Err(DomainError::ResetTokenInvalid)
    );
}

#[test]
fn a_completed_reset_unfreezes_the_account() {
    let mut story = Story::email_account();
    story.next_token("pw");
    story.change_password("phc-2");
    story.exec(freeze("pw"));
    story.next_token("reset");
    story.exec(AccountCommand::IssueResetToken);
    let events = story.exec(AccountCommand::CompleteReset {
        token_digest: token_digest("reset"),
        reuse: fresh(2),
        new_hash: hash("phc-3"),
        code: None,
    });
    assert_eq!(
        events,
        vec![
            AccountEvent::PasswordReset {
                password_hash: hash("phc-3"),
                reset_at: story.now(),
                protection: Some(link("reset", story.now())),
            },
            AccountEvent::AccountUnfrozen {
                reason: UnfreezeReason::PasswordReset,
                unfrozen_at: story.now(),
            },
        ]
    );
    assert!(!story.state().is_frozen());
    story.sign_in();
}

#[test]
fn reverting_a_contact_email_change_restores_the_previous_value_as_it_was() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::VerifyContact {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });
    story.step_up("s1");
    story.next_token("contact");
    story.exec(AccountCommand::ChangeContactEmail {
        session_id: sid("s1"),
        email: email("intruder@example.com"),
        code_id: "c-ce".into(),
    });
    let events = story.exec(freeze("contact"));
    assert_eq!(
        events[1],
        AccountEvent::ChangeReverted {
            change: ProtectedChange::ContactEmail {
                previous: Some(Verifiable {
                    value: email(LOGIN_EMAIL),
                    verified: true,
                }),
                email: email("intruder@example.com"),
            },
            reverted_at: story.now(),
        }
    );
    assert_eq!(
        story.state().contact_email,
        Some(Verifiable {
            value: email(LOGIN_EMAIL),
            verified: true,
        })
    );
}

#[test]
fn reverting_a_login_email_binding_unbinds_it() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(AccountCommand::RequestLoginEmailBinding {
        session_id: sid("s1"),
        email: email("intruder@example.com"),
        password_hash: Some(hash("phc-i")),
        code_id: "c-le".into(),
    });
    story.next_token("bound");
    let bound = story.exec(AccountCommand::ConfirmLoginEmailBinding {
        code: code(DEFAULT_CODE),
    });
    assert!(matches!(
        &bound[..],
        [
            AccountEvent::LoginEmailBound {
                protection: Some(_),
                ..
            },
            AccountEvent::PasswordChanged {
                protection: Some(_),
                ..
            }
        ]
    ));
    let events = story.exec(freeze("bound"));
    assert_eq!(
        events[1],
        AccountEvent::ChangeReverted {
            change: ProtectedChange::LoginEmail {
                email: email("intruder@example.com"),
            },
            reverted_at: story.now(),
        }
    );
    assert_eq!(story.state().login_email, None);
}

#[test]
fn an_old_link_never_undoes_a_value_that_came_back_later() {
    // The owner set the recovery mobile (link "owner"), an intruder changed it (link "hostile"),
    // the owner undid that: the current value equals what the owner's change set, but that
    // change was superseded, so its link only freezes.
    let mut story = Story::email_account();
    story.next_token("owner");
    story.set_recovery_mobile(OTHER_MOBILE);
    story.next_token("hostile");
    story.set_recovery_mobile(THIRD_MOBILE);
    story.exec(freeze("hostile"));
    assert_eq!(story.state().recovery_mobile, Some(mobile(OTHER_MOBILE)));
    let events = story.exec(freeze("owner"));
    assert!(
        matches!(events[..], [AccountEvent::AccountFrozen { .. }]),
        "{events:?}"
    );
    assert_eq!(story.state().recovery_mobile, Some(mobile(OTHER_MOBILE)));
}
