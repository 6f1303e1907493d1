//! Every decision of the account aggregate, one file per flow. Each `decide_*` is a pure
//! function of the state, the command and the services; `apply` never decides.
//!
//! A refused attempt that must still be recorded (a wrong code, a wrong password) is a
//! success here: its events are stored, and [`rejection`] tells the caller which error to
//! answer with.

mod account_recovery;
mod contact;
mod login_email;
mod password;
mod protection;
mod recovery_values;
mod registration;
mod reset;
mod servers;
mod sign_in;
mod step_up;

use chrono::{DateTime, Utc};

use super::{Account, AccountCommand, AccountEvent};
use crate::codes::{binding, CodeCheck, CodePurpose, CodeSlot, PendingCode};
use crate::error::DomainError;
use crate::rules::{CODE_TTL, LOCKOUT_DURATION, LOCKOUT_THRESHOLD, LOCKOUT_WINDOW};
use crate::services::{DomainServices, PasswordCheck, SessionId};
use crate::values::{AccountId, VerificationCode};
use crate::Channel;

pub(super) type Decision = Result<Vec<AccountEvent>, DomainError>;

/// The error a command's recorded events stand for, if they record a refused attempt.
pub fn rejection(events: &[AccountEvent]) -> Option<DomainError> {
    events.iter().find_map(|e| match e {
        AccountEvent::VerificationFailed { .. } => Some(DomainError::InvalidCode),
        AccountEvent::SignInFailed { .. } => Some(DomainError::InvalidCredentials),
        _ => None,
    })
}

impl Account {
    pub(super) fn decide(&self, command: AccountCommand, services: &DomainServices) -> Decision {
        use AccountCommand as C;
        let now = services.clock.now();
        if !matches!(
            command,
            C::RegisterWithEmail { .. } | C::RegisterWithMobile { .. }
        ) && self.id.is_none()
        {
            return Err(DomainError::AccountNotFound);
        }
        match command {
            C::RegisterWithEmail {
                account_id,
                login_email,
                password_hash,
                code_id,
            } => self.decide_register_with_email(
                account_id,
                login_email,
                password_hash,
                code_id,
                services,
            ),
            C::RegisterWithMobile { account_id, mobile } => {
                self.decide_register_with_mobile(account_id, mobile, now)
            }
            C::SignInWithPassword {
                check,
                session_id,
                new_client,
            } => self.decide_sign_in_with_password(check, session_id, new_client, services),
            C::SignInWithSms {
                session_id,
                new_client,
            } => Ok(self.decide_sign_in_with_sms(session_id, new_client, services)),
            C::StartIdentityVerification {
                verification_id,
                method,
                session_id,
            } => self.decide_start_identity_verification(
                verification_id,
                method,
                session_id,
                services,
            ),
            C::ConfirmIdentityWithCode {
                verification_id,
                session_id,
                code,
            } => {
                self.decide_confirm_identity_with_code(verification_id, session_id, code, services)
            }
            C::ConfirmIdentityWithPassword {
                verification_id,
                session_id,
                check,
            } => {
                self.decide_confirm_identity_with_password(verification_id, session_id, check, now)
            }
            C::ChangeContactMobile {
                session_id,
                mobile,
                code_id,
            } => self.decide_change_contact_mobile(&session_id, mobile, code_id, services),
            C::ChangeContactEmail {
                session_id,
                email,
                code_id,
            } => self.decide_change_contact_email(&session_id, email, code_id, services),
            C::VerifyContact { channel, code } => {
                self.decide_verify_contact(channel, code, services)
            }
            C::RequestRecoveryMobileChange {
                session_id,
                mobile,
                code_id,
            } => self.decide_request_recovery_mobile_change(&session_id, mobile, code_id, services),
            C::RequestRecoveryEmailChange {
                session_id,
                email,
                code_id,
            } => self.decide_request_recovery_email_change(&session_id, email, code_id, services),
            C::ConfirmRecoveryChange { channel, code } => {
                self.decide_confirm_recovery_change(channel, code, services)
            }
            C::RequestLoginEmailBinding {
                session_id,
                email,
                password_hash,
                code_id,
            } => self.decide_request_login_email_binding(
                &session_id,
                email,
                password_hash,
                code_id,
                services,
            ),
            C::ConfirmLoginEmailBinding { code } => {
                self.decide_confirm_login_email_binding(code, services)
            }
            C::ChangePassword {
                session_id,
                current,
                reuse,
                new_hash,
            } => self.decide_change_password(&session_id, current, reuse, new_hash, services),
            C::IssueResetToken => self.decide_issue_reset_token(services),
            C::SendResetCode {
                token_digest,
                channel,
                code_id,
            } => self.decide_send_reset_code(&token_digest, channel, code_id, services),
            C::CompleteReset {
                token_digest,
                reuse,
                new_hash,
                code,
            } => self.decide_complete_reset(&token_digest, reuse, new_hash, code, services),
            C::RecordRecoveryRequest {
                method,
                recovery_id,
            } => Ok(vec![AccountEvent::AccountRecoveryRequested {
                method,
                recovery_id,
            }]),
            C::RecordRecoveryConfirmationFailure { recovery_id } => {
                Ok(vec![AccountEvent::AccountRecoveryConfirmationFailed {
                    recovery_id,
                }])
            }
            C::RecordAccountInfoSent {
                message_id,
                mobile,
                accounts,
            } => Ok(self.decide_record_account_info_sent(message_id, mobile, accounts)),
            C::AssignServerIp { instance_id, ip } => {
                self.decide_assign_server_ip(instance_id, ip, now)
            }
            C::ReleaseServerIp { instance_id } => self.decide_release_server_ip(&instance_id, now),
            C::SendPasswordExpiryReminder => Ok(self.decide_password_expiry_reminder(services)),
            C::FreezeAccount { token_digest } => self.decide_freeze(token_digest, services),
        }
    }

    /// The registered id; only called after `decide` checked the account exists.
    fn owner(&self) -> &AccountId {
        self.id
            .as_ref()
            .expect("decide refuses commands on an unregistered account")
    }

    /// Refuses a gated request (every sensitive change) on a frozen account, or whose session
    /// holds no valid step-up.
    pub fn require_step_up(
        &self,
        session: &SessionId,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        self.require_not_frozen()?;
        if self.is_verified(session, now) {
            Ok(())
        } else {
            Err(DomainError::IdentityVerificationRequired)
        }
    }

    /// A fresh code for `purpose` sent over `channel` to `target`, as the event that issues it.
    #[allow(clippy::too_many_arguments)]
    fn issue_code(
        &self,
        owner: &AccountId,
        purpose: CodePurpose,
        channel: Channel,
        target: &str,
        code_id: String,
        bound_to: Option<String>,
        services: &DomainServices,
    ) -> AccountEvent {
        let code = services.secrets.new_code();
        let code_digest = services
            .secrets
            .code_digest(&binding(owner.as_str(), purpose, target, &code_id), &code);
        AccountEvent::VerificationCodeIssued {
            code_id,
            purpose,
            channel,
            target: target.to_owned(),
            code_digest,
            sealed_code: services.secrets.seal(code.as_str()),
            expires_at: services.clock.now() + CODE_TTL,
            bound_to,
        }
    }

    /// Checks a code answering the live code of `slot`, which must be for `target` and, when
    /// given, have id `code_id` and be bound to `bound_to`.
    ///
    /// `Ok(None)`: it matches. `Ok(Some(event))`: wrong, and the failure to record.
    fn check_code(
        &self,
        slot: CodeSlot,
        target: Option<&str>,
        code_id: Option<&str>,
        bound_to: Option<&str>,
        code: &VerificationCode,
        services: &DomainServices,
    ) -> Result<Option<AccountEvent>, DomainError> {
        let now = services.clock.now();
        let pending: &PendingCode = self.code_in(slot).ok_or(DomainError::CodeExpired)?;
        let same_target = target.is_none_or(|t| t == pending.target);
        let same_id = code_id.is_none_or(|id| id == pending.code_id);
        let same_binding = bound_to.is_none_or(|b| Some(b) == pending.bound_to.as_deref());
        if !(same_target && same_id && same_binding) {
            return Err(DomainError::CodeExpired);
        }
        match pending.check(self.owner().as_str(), code, now, services.secrets.as_ref()) {
            CodeCheck::Matches => Ok(None),
            CodeCheck::Wrong { .. } if self.is_retired_code(slot, code, services) => {
                // A replaced or used-up code: expired, not wrong.
                Err(DomainError::CodeExpired)
            }
            CodeCheck::Wrong { failures } => Ok(Some(AccountEvent::VerificationFailed {
                code_id: pending.code_id.clone(),
                purpose: pending.purpose,
                failures,
                at: now,
            })),
            CodeCheck::Expired => Err(DomainError::CodeExpired),
        }
    }

    /// Whether `code` answers one of the retired (replaced or used-up) codes of `slot`.
    fn is_retired_code(
        &self,
        slot: CodeSlot,
        code: &VerificationCode,
        services: &DomainServices,
    ) -> bool {
        let owner = self.owner().as_str();
        self.retired_codes
            .iter()
            .filter(|c| CodeSlot::new(c.purpose, c.channel) == slot)
            .any(|c| c.is_answered_by(owner, code, services.secrets.as_ref()))
    }

    /// Checks the outcome of a password verification against the lock and the version.
    ///
    /// `Ok(None)`: the password matched. `Ok(Some(events))`: it did not; record them.
    fn check_password(
        &self,
        check: PasswordCheck,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<AccountEvent>>, DomainError> {
        if let Some(until) = self.locked_until(now) {
            return Err(DomainError::Locked { until });
        }
        if self.password.is_none() {
            // Nothing to check against, so nothing to count towards a lock.
            return Err(DomainError::InvalidCredentials);
        }
        if check.against_version != self.password_version() {
            return Err(DomainError::StalePasswordCheck);
        }
        if check.matches {
            return Ok(None);
        }
        let recent = self
            .failed_password_checks
            .iter()
            .filter(|t| **t > now - LOCKOUT_WINDOW)
            .count();
        let consecutive = recent + 1;
        let mut events = vec![AccountEvent::SignInFailed {
            consecutive_failures: u32::try_from(consecutive).unwrap_or(u32::MAX),
            at: now,
        }];
        if consecutive >= LOCKOUT_THRESHOLD {
            events.push(AccountEvent::SignInLocked {
                until: now + LOCKOUT_DURATION,
            });
        }
        Ok(Some(events))
    }
}
