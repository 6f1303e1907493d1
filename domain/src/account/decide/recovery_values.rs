//! Recovery mobile and email: a change is requested after a step-up, a code goes to the new
//! value, and nothing changes until that code confirms it.

use super::Decision;
use crate::account::{Account, AccountEvent};
use crate::codes::{CodePurpose, CodeSlot};
use crate::error::DomainError;
use crate::services::{DomainServices, SessionId};
use crate::values::{Email, Mobile, VerificationCode};
use crate::Channel;

impl Account {
    pub(super) fn decide_request_recovery_mobile_change(
        &self,
        session: &SessionId,
        mobile: Mobile,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        self.require_step_up(session, services.clock.now())?;
        if self.recovery_mobile.as_ref() == Some(&mobile) {
            return Err(DomainError::AlreadyCurrent);
        }
        let code = self.issue_code(
            self.owner(),
            CodePurpose::Recovery,
            Channel::Sms,
            mobile.as_str(),
            code_id,
            None,
            services,
        );
        Ok(vec![
            AccountEvent::RecoveryMobileChangeRequested { mobile },
            code,
        ])
    }

    pub(super) fn decide_request_recovery_email_change(
        &self,
        session: &SessionId,
        email: Email,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        self.require_step_up(session, services.clock.now())?;
        if self.recovery_email.as_ref() == Some(&email) {
            return Err(DomainError::AlreadyCurrent);
        }
        let code = self.issue_code(
            self.owner(),
            CodePurpose::Recovery,
            Channel::Email,
            email.as_str(),
            code_id,
            None,
            services,
        );
        Ok(vec![
            AccountEvent::RecoveryEmailChangeRequested { email },
            code,
        ])
    }

    pub(super) fn decide_confirm_recovery_change(
        &self,
        channel: Channel,
        code: VerificationCode,
        services: &DomainServices,
    ) -> Decision {
        let pending = match channel {
            Channel::Sms => self.pending_recovery_mobile.as_ref().map(|m| m.as_str()),
            Channel::Email => self.pending_recovery_email.as_ref().map(|e| e.as_str()),
        }
        .ok_or(DomainError::CodeExpired)?;
        let slot = CodeSlot::new(CodePurpose::Recovery, channel);
        if let Some(failure) = self.check_code(slot, Some(pending), None, None, &code, services)? {
            return Ok(vec![failure]);
        }
        Ok(vec![match channel {
            Channel::Sms => AccountEvent::RecoveryMobileChanged {
                previous: self.recovery_mobile.clone(),
                mobile: self
                    .pending_recovery_mobile
                    .clone()
                    .expect("checked above: a change is pending"),
                protection: Some(self.protection_link(services)),
            },
            Channel::Email => AccountEvent::RecoveryEmailChanged {
                previous: self.recovery_email.clone(),
                email: self
                    .pending_recovery_email
                    .clone()
                    .expect("checked above: a change is pending"),
                protection: Some(self.protection_link(services)),
            },
        }])
    }
}
