//! Password reset from an emailed link: the token (kept as its SHA-256) is single use, lives
//! thirty minutes and dies with a newer token or any password change. When the account has a
//! verified recovery channel, a code sent to it must come with the new password.
//!
//! Completion checks the body first (policy and confirmation by the command layer, reuse here),
//! then the code; only a successful reset uses up the code and the token.

use super::Decision;
use crate::account::{Account, AccountEvent, UnfreezeReason, VerificationMethod};
use crate::codes::{CodePurpose, CodeSlot};
use crate::error::DomainError;
use crate::rules::RESET_TOKEN_TTL;
use crate::services::{Digest, DomainServices, PasswordHash, ReuseCheck};
use crate::values::VerificationCode;
use crate::Channel;

impl Account {
    /// Refuses a reset token that is not this account's live one.
    pub fn require_reset_token(
        &self,
        digest: &Digest,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DomainError> {
        match &self.reset_token {
            Some(t) if &t.digest == digest && now < t.expires_at => Ok(()),
            _ => Err(DomainError::ResetTokenInvalid),
        }
    }

    /// The ways a reset can verify the person: the verified recovery channels.
    pub fn reset_verification_methods(&self) -> Vec<VerificationMethod> {
        let mut methods = Vec::with_capacity(2);
        if self.recovery_mobile.is_some() {
            methods.push(VerificationMethod::Sms);
        }
        if self.recovery_email.is_some() {
            methods.push(VerificationMethod::Email);
        }
        methods
    }

    pub(super) fn decide_issue_reset_token(&self, services: &DomainServices) -> Decision {
        let login_email = self
            .login_email
            .clone()
            .ok_or(DomainError::LoginEmailRequired)?;
        let token = services.secrets.new_reset_token();
        Ok(vec![AccountEvent::ResetTokenIssued {
            token_digest: services.secrets.token_digest(token.expose_secret()),
            sealed_token: services.secrets.seal(token.expose_secret()),
            login_email,
            expires_at: services.clock.now() + RESET_TOKEN_TTL,
        }])
    }

    pub(super) fn decide_send_reset_code(
        &self,
        token_digest: &Digest,
        channel: Channel,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        self.require_reset_token(token_digest, services.clock.now())?;
        let method = match channel {
            Channel::Sms => VerificationMethod::Sms,
            Channel::Email => VerificationMethod::Email,
        };
        let target = self
            .step_up_target(method)?
            .expect("sms and email methods always have a target");
        Ok(vec![self.issue_code(
            self.owner(),
            CodePurpose::Reset,
            channel,
            &target,
            code_id,
            Some(token_digest.as_hex().to_owned()),
            services,
        )])
    }

    pub(super) fn decide_complete_reset(
        &self,
        token_digest: &Digest,
        reuse: ReuseCheck,
        new_hash: PasswordHash,
        code: Option<VerificationCode>,
        services: &DomainServices,
    ) -> Decision {
        let now = services.clock.now();
        self.require_reset_token(token_digest, now)?;
        self.refuse_reuse(reuse)?;
        if !self.reset_verification_methods().is_empty() {
            let code = code.ok_or(DomainError::CodeRequired)?;
            let slot = CodeSlot::new(CodePurpose::Reset, Channel::Sms);
            if let Some(failure) = self.check_code(
                slot,
                None,
                None,
                Some(token_digest.as_hex()),
                &code,
                services,
            )? {
                return Ok(vec![failure]);
            }
        }
        let mut events = vec![AccountEvent::PasswordReset {
            password_hash: new_hash,
            reset_at: now,
            protection: Some(self.protection_link(services)),
        }];
        if self.is_frozen() {
            // Only a completed reset (the login email and, where set, a recovery channel) ends
            // a freeze.
            events.push(AccountEvent::AccountUnfrozen {
                reason: UnfreezeReason::PasswordReset,
                unfrozen_at: now,
            });
        }
        Ok(events)
    }
}
