//! Changing the password, and the 90-day reminder.
//!
//! SPEC order of checks on `PUT /v1/me/password`: step-up → login email → body (policy and
//! confirmation, checked by the command layer on the clear password) → current password →
//! reuse. The first two are [`Account::precheck_password_change`], which the command layer calls
//! before it looks at the body; `decide` checks them again against the state it runs on.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::account::{Account, AccountEvent, PasswordChangeReason};
use crate::error::DomainError;
use crate::services::{DomainServices, PasswordCheck, PasswordHash, ReuseCheck, SessionId};

impl Account {
    pub fn precheck_password_change(
        &self,
        session: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        self.require_step_up(session, now)?;
        if self.login_email.is_none() {
            return Err(DomainError::LoginEmailRequired);
        }
        Ok(())
    }

    pub(super) fn decide_change_password(
        &self,
        session: &SessionId,
        current: PasswordCheck,
        reuse: ReuseCheck,
        new_hash: PasswordHash,
        services: &DomainServices,
    ) -> Decision {
        let now = services.clock.now();
        self.precheck_password_change(session, now)?;
        if let Some(failure) = self.check_password(current, now)? {
            return Ok(failure);
        }
        self.refuse_reuse(reuse)?;
        Ok(vec![AccountEvent::PasswordChanged {
            password_hash: new_hash,
            reason: PasswordChangeReason::Change,
            changed_at: now,
            protection: Some(self.protection_link(services)),
        }])
    }

    /// Refuses a new password that equals one of the last ones.
    pub(super) fn refuse_reuse(&self, reuse: ReuseCheck) -> Result<(), DomainError> {
        if reuse.against_version != self.password_version() {
            return Err(DomainError::StalePasswordCheck);
        }
        if reuse.reused {
            return Err(DomainError::PasswordReused);
        }
        Ok(())
    }

    /// Whether the password is older than `after_days` at `now` (the profile's
    /// `password_change_recommended`).
    pub fn password_change_recommended(&self, now: DateTime<Utc>, after_days: i64) -> bool {
        self.password.as_ref().is_some_and(|p| {
            p.changed_at
                < crate::account::profile::password_change_recommended_before(now, after_days)
        })
    }

    pub(super) fn decide_password_expiry_reminder(
        &self,
        services: &DomainServices,
    ) -> Vec<AccountEvent> {
        let now = services.clock.now();
        let after_days = services.password_policy.reminder_after_days;
        match &self.password {
            Some(p)
                if self.password_change_recommended(now, after_days)
                    && self.reminded_for != Some(p.changed_at) =>
            {
                vec![AccountEvent::PasswordExpiryReminderSent {
                    password_changed_at: p.changed_at,
                }]
            }
            _ => vec![],
        }
    }
}
