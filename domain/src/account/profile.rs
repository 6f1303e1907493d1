//! The profile of SPEC §3: what `GET /v1/me` shows (masked), and what the internal profile
//! and the audit `state` show (unmasked). Built from the aggregate state so that audit replay
//! and the write side share one model.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Account;
use crate::values::{AccountId, Email, Mobile};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileValue {
    pub value: String,
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub instance_id: String,
    pub public_ip: String,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub account_id: AccountId,
    pub login_email: Option<String>,
    pub login_mobile: Option<String>,
    pub contact_mobile: Option<ProfileValue>,
    pub contact_email: Option<ProfileValue>,
    pub recovery_mobile: Option<ProfileValue>,
    pub recovery_email: Option<ProfileValue>,
    pub pending_recovery_mobile: Option<String>,
    pub pending_recovery_email: Option<String>,
    pub pending_login_email: Option<String>,
    pub servers: Vec<Server>,
    pub password_set: bool,
    pub password_changed_at: Option<DateTime<Utc>>,
    pub password_change_recommended: bool,
    pub warnings: Vec<Warning>,
    /// A protection link was followed and no reset completed since (docs/adr/0009): password
    /// sign-in and sensitive changes are refused.
    #[serde(default)]
    pub frozen: bool,
}

/// SPEC §2: a password set before this instant is older than `after_days` at `now`, so a change
/// is recommended and one reminder is due. The profile, the reminder decision and the read
/// side's reminder sweep all ask this one rule.
pub fn password_change_recommended_before(now: DateTime<Utc>, after_days: i64) -> DateTime<Utc> {
    now - chrono::Duration::days(after_days)
}

/// The recommendation of SPEC §2 for a contact and a recovery value.
pub fn warnings(
    contact_mobile: Option<&str>,
    recovery_mobile: Option<&str>,
    contact_email: Option<&str>,
    recovery_email: Option<&str>,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if let (Some(c), Some(r)) = (contact_mobile, recovery_mobile) {
        if c != r {
            warnings.push(Warning {
                code: "contact_recovery_mobile_differ".into(),
                message: "Your contact mobile and recovery mobile differ; security notices and \
                          recovery codes go to different phones."
                    .into(),
            });
        }
    }
    if let (Some(c), Some(r)) = (contact_email, recovery_email) {
        if c != r {
            warnings.push(Warning {
                code: "contact_recovery_email_differ".into(),
                message: "Your contact email and recovery email differ; security notices and \
                          recovery codes go to different mailboxes."
                    .into(),
            });
        }
    }
    warnings
}

fn verified(value: &str) -> ProfileValue {
    ProfileValue {
        value: value.to_owned(),
        verified: true,
    }
}

impl Account {
    /// The unmasked profile at `now`; `None` before registration.
    pub fn profile(&self, now: DateTime<Utc>, reminder_after_days: i64) -> Option<Profile> {
        let contact_mobile = self.contact_mobile.as_ref();
        let contact_email = self.contact_email.as_ref();
        Some(Profile {
            account_id: self.id.clone()?,
            login_email: self.login_email.as_ref().map(|e| e.as_str().to_owned()),
            login_mobile: self.login_mobile.as_ref().map(|m| m.as_str().to_owned()),
            contact_mobile: contact_mobile.map(|c| ProfileValue {
                value: c.value.as_str().to_owned(),
                verified: c.verified,
            }),
            contact_email: contact_email.map(|c| ProfileValue {
                value: c.value.as_str().to_owned(),
                verified: c.verified,
            }),
            recovery_mobile: self.recovery_mobile.as_ref().map(|m| verified(m.as_str())),
            recovery_email: self.recovery_email.as_ref().map(|e| verified(e.as_str())),
            pending_recovery_mobile: self
                .pending_recovery_mobile
                .as_ref()
                .map(|m| m.as_str().to_owned()),
            pending_recovery_email: self
                .pending_recovery_email
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            pending_login_email: self
                .pending_login_email
                .as_ref()
                .map(|p| p.email.as_str().to_owned()),
            servers: self
                .servers
                .iter()
                .map(|s| Server {
                    instance_id: s.instance_id.clone(),
                    public_ip: s.public_ip.as_str().to_owned(),
                    assigned_at: s.assigned_at,
                })
                .collect(),
            password_set: self.password.is_some(),
            password_changed_at: self.password.as_ref().map(|p| p.changed_at),
            password_change_recommended: self.password_change_recommended(now, reminder_after_days),
            warnings: warnings(
                contact_mobile.map(|c| c.value.as_str()),
                self.recovery_mobile.as_ref().map(|m| m.as_str()),
                contact_email.map(|c| c.value.as_str()),
                self.recovery_email.as_ref().map(|e| e.as_str()),
            ),
            frozen: self.is_frozen(),
        })
    }
}

impl Profile {
    /// The account holder's own view: recovery and pending values masked (SPEC §3).
    pub fn masked(mut self) -> Self {
        let mask_mobile = |v: &str| Mobile::parse(v).map(|m| m.masked()).unwrap_or_default();
        let mask_email = |v: &str| Email::parse(v).map(|e| e.masked()).unwrap_or_default();
        if let Some(v) = &mut self.recovery_mobile {
            v.value = mask_mobile(&v.value);
        }
        if let Some(v) = &mut self.recovery_email {
            v.value = mask_email(&v.value);
        }
        self.pending_recovery_mobile = self.pending_recovery_mobile.as_deref().map(mask_mobile);
        self.pending_recovery_email = self.pending_recovery_email.as_deref().map(mask_email);
        self.pending_login_email = self.pending_login_email.as_deref().map(mask_email);
        self
    }
}
