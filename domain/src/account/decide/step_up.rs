//! Identity verification during a session (step-up): a code to the recovery mobile or
//! recovery email, or the password. It authorises the session's gated requests for ten minutes.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::account::{Account, AccountEvent, VerificationMethod};
use crate::codes::{CodePurpose, CodeSlot};
use crate::error::DomainError;
use crate::rules::STEP_UP_TTL;
use crate::services::{DomainServices, PasswordCheck, SessionId};
use crate::values::VerificationCode;
use crate::Channel;

impl Account {
    /// Where a step-up by `method` would send its code: `None` for the password.
    /// Refuses a method the account lacks.
    pub fn step_up_target(
        &self,
        method: VerificationMethod,
    ) -> Result<Option<String>, DomainError> {
        match method {
            VerificationMethod::Sms => self
                .recovery_mobile
                .as_ref()
                .map(|m| Some(m.as_str().to_owned()))
                .ok_or(DomainError::VerificationMethodUnavailable(
                    "recovery mobile",
                )),
            VerificationMethod::Email => self
                .recovery_email
                .as_ref()
                .map(|e| Some(e.as_str().to_owned()))
                .ok_or(DomainError::VerificationMethodUnavailable("recovery email")),
            VerificationMethod::Password => self
                .password
                .as_ref()
                .map(|_| None)
                .ok_or(DomainError::VerificationMethodUnavailable("password")),
        }
    }

    pub(super) fn decide_start_identity_verification(
        &self,
        verification_id: String,
        method: VerificationMethod,
        session_id: SessionId,
        services: &DomainServices,
    ) -> Decision {
        let target = self.step_up_target(method)?;
        let (Some(target), Some(channel)) = (target, method.channel()) else {
            // By password: nothing is sent, the password is checked at confirmation.
            return Ok(vec![]);
        };
        Ok(vec![self.issue_code(
            self.owner(),
            CodePurpose::StepUp,
            channel,
            &target,
            verification_id,
            Some(session_id.as_str().to_owned()),
            services,
        )])
    }

    pub(super) fn decide_confirm_identity_with_code(
        &self,
        verification_id: String,
        session_id: SessionId,
        code: VerificationCode,
        services: &DomainServices,
    ) -> Decision {
        let slot = CodeSlot::new(CodePurpose::StepUp, Channel::Sms);
        let method = match self.code_in(slot).map(|c| c.channel) {
            Some(Channel::Email) => VerificationMethod::Email,
            _ => VerificationMethod::Sms,
        };
        if let Some(failure) = self.check_code(
            slot,
            None,
            Some(&verification_id),
            Some(session_id.as_str()),
            &code,
            services,
        )? {
            return Ok(vec![failure]);
        }
        Ok(vec![self.identity_verified(
            verification_id,
            method,
            session_id,
            services.clock.now(),
        )])
    }

    pub(super) fn decide_confirm_identity_with_password(
        &self,
        verification_id: String,
        session_id: SessionId,
        check: PasswordCheck,
        now: DateTime<Utc>,
    ) -> Decision {
        if let Some(failure) = self.check_password(check, now)? {
            return Ok(failure);
        }
        Ok(vec![self.identity_verified(
            verification_id,
            VerificationMethod::Password,
            session_id,
            now,
        )])
    }

    fn identity_verified(
        &self,
        verification_id: String,
        method: VerificationMethod,
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> AccountEvent {
        AccountEvent::IdentityVerified {
            verification_id,
            method,
            session_id,
            verified_until: now + STEP_UP_TTL,
        }
    }
}
