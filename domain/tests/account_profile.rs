//! The profile of SPEC §3: values, warnings, masking and the password recommendation.

mod support;

use chrono::Duration;
use domain::account::{Profile, ProfileServer, ProfileValue};
use domain::{AccountCommand, Channel};

use support::*;

const DIFFER: &str = "contact_recovery_mobile_differ";
const EMAIL_DIFFER: &str = "contact_recovery_email_differ";

fn profile(story: &Story) -> Profile {
    story.state().profile(story.now(), 90).expect("registered")
}

fn codes(profile: &Profile) -> Vec<&str> {
    profile.warnings.iter().map(|w| w.code.as_str()).collect()
}

#[test]
fn there_is_no_profile_before_registration() {
    assert_eq!(Story::new().state().profile(t0(), 90), None);
}

#[test]
fn the_profile_of_a_mobile_account_shows_the_mobile_as_login_recovery_and_contact_mobile() {
    let story = Story::mobile_account();
    let verified_mobile = Some(ProfileValue {
        value: LOGIN_MOBILE.into(),
        verified: true,
    });
    assert_eq!(
        profile(&story),
        Profile {
            account_id: account_id(),
            login_email: None,
            login_mobile: Some(LOGIN_MOBILE.into()),
            contact_mobile: verified_mobile.clone(),
            contact_email: None,
            recovery_mobile: verified_mobile,
            recovery_email: None,
            pending_recovery_mobile: None,
            pending_recovery_email: None,
            pending_login_email: None,
            servers: vec![],
            password_set: false,
            password_changed_at: None,
            password_change_recommended: false,
            warnings: vec![],
            frozen: false,
        }
    );
}

#[test]
fn the_profile_of_an_email_account_shows_the_unverified_contact_email_and_the_password() {
    let mut story = Story::email_account();
    story.exec(AccountCommand::AssignServerIp {
        instance_id: "ins-1".into(),
        ip: ip("203.0.113.7"),
    });
    let p = profile(&story);
    assert_eq!(p.login_email.as_deref(), Some(LOGIN_EMAIL));
    assert_eq!(p.login_mobile, None);
    assert_eq!(
        p.contact_email,
        Some(ProfileValue {
            value: LOGIN_EMAIL.into(),
            verified: false,
        })
    );
    assert_eq!(p.recovery_mobile, None);
    assert!(p.password_set);
    assert_eq!(p.password_changed_at, Some(t0()));
    assert_eq!(
        p.servers,
        vec![ProfileServer {
            instance_id: "ins-1".into(),
            public_ip: "203.0.113.7".into(),
            assigned_at: t0(),
        }]
    );
}

#[test]
fn a_contact_mobile_that_differs_from_the_recovery_mobile_is_warned_about() {
    let mut story = Story::mobile_account();
    assert!(!codes(&profile(&story)).contains(&DIFFER));
    story.step_up("s1");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-1".into(),
    });
    assert!(codes(&profile(&story)).contains(&DIFFER));
}

#[test]
fn equal_contact_and_recovery_mobiles_are_not_warned_about() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-1".into(),
    });
    story.exec(AccountCommand::RequestRecoveryMobileChange {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-2".into(),
    });
    story.exec(AccountCommand::ConfirmRecoveryChange {
        channel: Channel::Sms,
        code: code(DEFAULT_CODE),
    });
    assert!(!codes(&profile(&story)).contains(&DIFFER));
}

#[test]
fn a_contact_mobile_without_a_recovery_mobile_is_not_warned_about() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story.exec(AccountCommand::ChangeContactMobile {
        session_id: sid("s1"),
        mobile: mobile(OTHER_MOBILE),
        code_id: "c-1".into(),
    });
    assert!(profile(&story).warnings.is_empty());
}

#[test]
fn a_contact_email_that_differs_from_the_recovery_email_is_warned_about() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story.exec(AccountCommand::RequestRecoveryEmailChange {
        session_id: sid("s1"),
        email: email("r@example.com"),
        code_id: "c-1".into(),
    });
    story.exec(AccountCommand::ConfirmRecoveryChange {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });
    assert_eq!(codes(&profile(&story)), vec![EMAIL_DIFFER]);
}

#[test]
fn the_masked_profile_masks_recovery_and_pending_values() {
    let mut story = Story::mobile_account();
    story.step_up("s1");
    story.exec(AccountCommand::RequestRecoveryMobileChange {
        session_id: sid("s1"),
        mobile: mobile("+8613912345678"),
        code_id: "c-1".into(),
    });
    story.exec(AccountCommand::RequestRecoveryEmailChange {
        session_id: sid("s1"),
        email: email("john@example.com"),
        code_id: "c-2".into(),
    });
    story.exec(AccountCommand::RequestLoginEmailBinding {
        session_id: sid("s1"),
        email: email("jane@example.com"),
        password_hash: Some(hash("phc-m")),
        code_id: "c-3".into(),
    });
    let unmasked = profile(&story);
    assert_eq!(
        unmasked.pending_recovery_mobile.as_deref(),
        Some("+8613912345678")
    );

    let masked = unmasked.clone().masked();
    assert_eq!(
        masked.recovery_mobile,
        Some(ProfileValue {
            value: "+86 138****8000".into(),
            verified: true,
        })
    );
    assert_eq!(
        masked.pending_recovery_mobile.as_deref(),
        Some("+86 139****5678")
    );
    assert_eq!(
        masked.pending_recovery_email.as_deref(),
        Some("j***n@example.com")
    );
    assert_eq!(
        masked.pending_login_email.as_deref(),
        Some("j***e@example.com")
    );
    // Login and contact values are the holder's own and stay as they are.
    assert_eq!(masked.login_mobile, unmasked.login_mobile);
    assert_eq!(masked.contact_mobile, unmasked.contact_mobile);
}

#[test]
fn the_masked_profile_masks_the_recovery_email() {
    let mut story = Story::email_account();
    story.step_up("s1");
    story.exec(AccountCommand::RequestRecoveryEmailChange {
        session_id: sid("s1"),
        email: email("robin@example.com"),
        code_id: "c-1".into(),
    });
    story.exec(AccountCommand::ConfirmRecoveryChange {
        channel: Channel::Email,
        code: code(DEFAULT_CODE),
    });
    let masked = profile(&story).masked();
    assert_eq!(
        masked.recovery_email,
        Some(ProfileValue {
            value: "r***n@example.com".into(),
            verified: true,
        })
    );
    assert_eq!(masked.login_email.as_deref(), Some(LOGIN_EMAIL));
}

#[test]
fn a_password_change_is_recommended_after_ninety_days() {
    let story = Story::email_account();
    story.set_now(t0() + Duration::days(90));
    assert!(!profile(&story).password_change_recommended);
    story.set_now(t0() + Duration::days(90) + Duration::seconds(1));
    assert!(profile(&story).password_change_recommended);
}

#[test]
fn a_new_password_is_no_longer_recommended_for_a_change() {
    let mut story = Story::email_account();
    story.set_now(t0() + Duration::days(100));
    story.change_password("phc-2");
    assert!(!profile(&story).password_change_recommended);
}
