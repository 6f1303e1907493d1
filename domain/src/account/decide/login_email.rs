//! Binding a login email to an account made with a mobile: requested after a step-up (with a
//! password when the account has none), bound when the code sent to the email comes back.
//! Binding does not change the contact email.

use super::Decision;
use crate::account::{Account, AccountEvent, PasswordChangeReason};
use crate::codes::{CodePurpose, CodeSlot};
use crate::error::DomainError;
use crate::services::{DomainServices, PasswordHash, SessionId};
use crate::values::{Email, VerificationCode};
use crate::Channel;

impl Account {
    /// The checks of `PUT /v1/me/login-email` that come before the body, in SPEC order:
    /// an account that has a login email is told so before it is asked for a step-up.
    pub fn precheck_login_email_binding(
        &self,
        session: &SessionId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DomainError> {
        if self.login_email.is_some() {
            return Err(DomainError::LoginEmailAlreadyBound);
        }
        self.require_step_up(session, now)
    }

    pub(super) fn decide_request_login_email_binding(
        &self,
        session: &SessionId,
        email: Email,
        password_hash: Option<PasswordHash>,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        self.precheck_login_email_binding(session, services.clock.now())?;
        match (&self.password, &password_hash) {
            (None, None) => return Err(DomainError::PasswordRequired),
            (Some(_), Some(_)) => return Err(DomainError::PasswordAlreadySet),
            _ => {}
        }
        let code = self.issue_code(
            self.owner(),
            CodePurpose::LoginEmail,
            Channel::Email,
            email.as_str(),
            code_id,
            None,
            services,
        );
        Ok(vec![
            AccountEvent::LoginEmailBindingRequested {
                email,
                password_hash,
            },
            code,
        ])
    }

    pub(super) fn decide_confirm_login_email_binding(
        &self,
        code: VerificationCode,
        services: &DomainServices,
    ) -> Decision {
        if self.login_email.is_some() {
            return Err(DomainError::LoginEmailAlreadyBound);
        }
        let pending = self
            .pending_login_email
            .as_ref()
            .ok_or(DomainError::CodeExpired)?;
        let slot = CodeSlot::new(CodePurpose::LoginEmail, Channel::Email);
        if let Some(failure) = self.check_code(
            slot,
            Some(pending.email.as_str()),
            None,
            None,
            &code,
            services,
        )? {
            return Ok(vec![failure]);
        }
        let mut events = vec![AccountEvent::LoginEmailBound {
            email: pending.email.clone(),
            protection: Some(self.protection_link(services)),
        }];
        if let Some(password_hash) = pending.password_hash.clone() {
            events.push(AccountEvent::PasswordChanged {
                password_hash,
                reason: PasswordChangeReason::LoginEmailBound,
                changed_at: services.clock.now(),
                protection: Some(self.protection_link(services)),
            });
        }
        Ok(events)
    }
}
