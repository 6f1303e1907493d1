//! The account aggregate: how a customer is reached and how they prove who they are.
//!
//! # Layout
//! - [`events`]: the account stream's events (persisted names).
//! - [`commands`]: what can be asked of an account.
//! - this file: the state, `apply` (state changes only, no decisions) and the cqrs-es wiring.
//! - `decide/`: one file per flow; every decision is made there, in pure functions.
//! - [`profile`]: the profile view of SPEC §3, folded from the same state.
//! - [`protection`]: the "this wasn't me" links, the freeze and the revert (docs/adr/0009).

pub mod commands;
mod decide;
pub mod events;
pub mod profile;
pub mod protection;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::codes::{CodePurpose, CodeSlot, PendingCode};
use crate::error::DomainError;
use crate::rules::{LOCKOUT_WINDOW, MAX_PASSWORD_HISTORY, PROTECTION_TOKEN_TTL, STEP_UP_TTL};
use crate::services::{Digest, DomainServices, PasswordHash, SessionId};
use crate::values::{AccountId, Email, Mobile, ServerIp};

pub use commands::AccountCommand;
pub use decide::rejection;
pub use events::{
    AccountEvent, AccountSummary, NewClient, PasswordChangeReason, RecoveryMethod, SignInClient,
    Verifiable, VerificationMethod,
};
pub use profile::{Profile, ProfileValue, Server as ProfileServer, Warning};
pub use protection::{ProtectedChange, Protection, ProtectionLink, UnfreezeReason};

/// How many replaced or used-up codes the state remembers.
const MAX_RETIRED_CODES: usize = 8;

/// The aggregate type stored in every row: never rename it.
pub const ACCOUNT_AGGREGATE_TYPE: &str = "Account";

/// The current password and its place in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordState {
    pub hash: PasswordHash,
    /// Bumped at each change; a [`crate::PasswordCheck`] names the version it checked.
    pub version: u32,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingLoginEmail {
    pub email: Email,
    pub password_hash: Option<PasswordHash>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetTokenState {
    pub digest: Digest,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub instance_id: String,
    pub public_ip: ServerIp,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepUp {
    pub session_id: SessionId,
    pub verified_until: DateTime<Utc>,
}

/// The state folded from an account's events. Fields are read by the command layer (to check
/// passwords before a command) and by audit replay; only `apply` writes them.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: Option<AccountId>,
    pub registered_at: Option<DateTime<Utc>>,
    pub login_email: Option<Email>,
    pub login_mobile: Option<Mobile>,
    pub contact_mobile: Option<Verifiable<Mobile>>,
    pub contact_email: Option<Verifiable<Email>>,
    /// Recovery values are set only once proved, so they are always verified.
    pub recovery_mobile: Option<Mobile>,
    pub recovery_email: Option<Email>,
    pub pending_recovery_mobile: Option<Mobile>,
    pub pending_recovery_email: Option<Email>,
    pub pending_login_email: Option<PendingLoginEmail>,
    pub password: Option<PasswordState>,
    /// The passwords before the current one, newest first, as deep as the policy's history.
    pub previous_password_hashes: Vec<PasswordHash>,
    /// Live codes, at most one per [`CodeSlot`].
    pub codes: Vec<PendingCode>,
    /// The last codes replaced by newer ones or used up, so that typing one of them answers
    /// "expired" rather than "wrong" (and does not count as a wrong attempt).
    #[serde(default)]
    pub retired_codes: Vec<PendingCode>,
    pub step_ups: Vec<StepUp>,
    pub reset_token: Option<ResetTokenState>,
    /// Times of the consecutive failed password checks still inside the lockout window.
    pub failed_password_checks: Vec<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub servers: Vec<Server>,
    /// Every instance id this account ever had: an instance id is never reused.
    pub used_instance_ids: Vec<String>,
    /// The `changed_at` of the password the 90-day reminder was sent for.
    pub reminded_for: Option<DateTime<Utc>>,
    /// The live protection links of recent security notices, each with the change it answers,
    /// oldest first. Persistent: the copy of the state a command makes shares them.
    #[serde(default)]
    pub protections: imbl::Vector<Protection>,
    /// Since when the account is frozen (a protection link was followed); `None` when not.
    #[serde(default)]
    pub frozen_since: Option<DateTime<Utc>>,
}

impl Aggregate for Account {
    const TYPE: &'static str = ACCOUNT_AGGREGATE_TYPE;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = DomainError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use AccountEvent as E;
        match event {
            E::AccountRegistered {
                account_id,
                login_email,
                login_mobile,
                contact_mobile,
                contact_email,
                recovery_mobile,
                password_hash,
                registered_at,
            } => {
                self.id = Some(account_id);
                self.registered_at = Some(registered_at);
                self.login_email = login_email;
                self.login_mobile = login_mobile;
                self.contact_mobile = contact_mobile;
                self.contact_email = contact_email;
                self.recovery_mobile = recovery_mobile;
                self.password = password_hash.map(|hash| PasswordState {
                    hash,
                    version: 1,
                    changed_at: registered_at,
                });
            }
            E::VerificationCodeIssued {
                code_id,
                purpose,
                channel,
                target,
                code_digest,
                expires_at,
                bound_to,
                sealed_code: _,
            } => {
                self.retire_code(CodeSlot::new(purpose, channel));
                self.codes.push(PendingCode {
                    code_id,
                    purpose,
                    channel,
                    target,
                    digest: code_digest,
                    expires_at,
                    failures: 0,
                    bound_to,
                });
            }
            E::VerificationFailed {
                code_id, failures, ..
            } => {
                if let Some(code) = self.codes.iter_mut().find(|c| c.code_id == code_id) {
                    code.failures = failures;
                }
            }
            E::IdentityVerified {
                verification_id,
                session_id,
                verified_until,
                method,
            } => {
                self.codes.retain(|c| c.code_id != verification_id);
                // Step-ups of other sessions that have lapsed are of no further use.
                let now = verified_until - STEP_UP_TTL;
                self.step_ups
                    .retain(|s| s.session_id != session_id && s.verified_until > now);
                self.step_ups.push(StepUp {
                    session_id,
                    verified_until,
                });
                if method == VerificationMethod::Password {
                    self.password_check_succeeded();
                }
            }
            E::ContactMobileChanged {
                mobile, protection, ..
            } => {
                self.remember_protection(
                    protection,
                    ProtectedChange::ContactMobile {
                        previous: self.contact_mobile.clone(),
                        mobile: mobile.clone(),
                    },
                );
                self.contact_mobile = Some(Verifiable {
                    value: mobile,
                    verified: false,
                });
            }
            E::ContactEmailChanged {
                email, protection, ..
            } => {
                self.remember_protection(
                    protection,
                    ProtectedChange::ContactEmail {
                        previous: self.contact_email.clone(),
                        email: email.clone(),
                    },
                );
                self.contact_email = Some(Verifiable {
                    value: email,
                    verified: false,
                });
            }
            E::ContactMobileVerified { .. } => {
                self.use_up_code(CodePurpose::Contact, crate::Channel::Sms);
                if let Some(c) = &mut self.contact_mobile {
                    c.verified = true;
                }
            }
            E::ContactEmailVerified { .. } => {
                self.use_up_code(CodePurpose::Contact, crate::Channel::Email);
                if let Some(c) = &mut self.contact_email {
                    c.verified = true;
                }
            }
            E::RecoveryMobileChangeRequested { mobile } => {
                self.pending_recovery_mobile = Some(mobile);
            }
            E::RecoveryEmailChangeRequested { email } => {
                self.pending_recovery_email = Some(email);
            }
            E::RecoveryMobileChanged {
                mobile, protection, ..
            } => {
                self.remember_protection(
                    protection,
                    ProtectedChange::RecoveryMobile {
                        previous: self.recovery_mobile.clone(),
                        mobile: mobile.clone(),
                    },
                );
                self.use_up_code(CodePurpose::Recovery, crate::Channel::Sms);
                self.pending_recovery_mobile = None;
                self.recovery_mobile = Some(mobile);
            }
            E::RecoveryEmailChanged {
                email, protection, ..
            } => {
                self.remember_protection(
                    protection,
                    ProtectedChange::RecoveryEmail {
                        previous: self.recovery_email.clone(),
                        email: email.clone(),
                    },
                );
                self.use_up_code(CodePurpose::Recovery, crate::Channel::Email);
                self.pending_recovery_email = None;
                self.recovery_email = Some(email);
            }
            E::LoginEmailBindingRequested {
                email,
                password_hash,
            } => {
                self.pending_login_email = Some(PendingLoginEmail {
                    email,
                    password_hash,
                });
            }
            E::LoginEmailBound { email, protection } => {
                self.remember_protection(
                    protection,
                    ProtectedChange::LoginEmail {
                        email: email.clone(),
                    },
                );
                self.use_up_code(CodePurpose::LoginEmail, crate::Channel::Email);
                self.pending_login_email = None;
                self.login_email = Some(email);
            }
            E::PasswordChanged {
                password_hash,
                changed_at,
                protection,
                ..
            } => {
                self.remember_protection(protection, ProtectedChange::Password);
                self.set_password(password_hash, changed_at);
                self.password_check_succeeded();
            }
            E::ResetTokenIssued {
                token_digest,
                expires_at,
                ..
            } => {
                self.reset_token = Some(ResetTokenState {
                    digest: token_digest,
                    expires_at,
                });
                self.codes.retain(|c| c.purpose != CodePurpose::Reset);
            }
            E::PasswordReset {
                password_hash,
                reset_at,
                protection,
            } => {
                self.remember_protection(protection, ProtectedChange::PasswordReset);
                self.set_password(password_hash, reset_at);
                self.password_check_succeeded();
                // A reset ends every session, and with them their step-ups.
                self.step_ups.clear();
            }
            E::SignedIn {
                method,
                session_id,
                new_client,
                ..
            } => {
                if method == VerificationMethod::Password {
                    self.password_check_succeeded();
                }
                if let Some(NewClient {
                    ip,
                    user_agent,
                    protection,
                }) = new_client
                {
                    self.remember_protection(
                        Some(protection),
                        ProtectedChange::SignIn {
                            session_id,
                            ip,
                            user_agent,
                        },
                    );
                }
            }
            E::SignInFailed { at, .. } => {
                self.failed_password_checks
                    .retain(|t| *t > at - LOCKOUT_WINDOW);
                self.failed_password_checks.push(at);
            }
            E::SignInLocked { until } => {
                self.locked_until = Some(until);
                self.failed_password_checks.clear();
            }
            E::AccountRecoveryRequested { .. }
            | E::AccountRecoveryConfirmationFailed { .. }
            | E::AccountInfoSent { .. } => {}
            E::ServerIpAssigned {
                instance_id,
                public_ip,
                assigned_at,
            } => {
                self.used_instance_ids.push(instance_id.clone());
                self.servers.push(Server {
                    instance_id,
                    public_ip,
                    assigned_at,
                });
            }
            E::ServerIpReleased { instance_id, .. } => {
                self.servers.retain(|s| s.instance_id != instance_id);
            }
            E::PasswordExpiryReminderSent {
                password_changed_at,
            } => {
                self.reminded_for = Some(password_changed_at);
            }
            E::AccountFrozen {
                token_digest,
                frozen_at,
                ..
            } => {
                // The link is used up; the account loses every way in but a reset.
                self.protections.retain(|p| p.token_digest != token_digest);
                self.frozen_since.get_or_insert(frozen_at);
                self.step_ups.clear();
                self.pending_recovery_mobile = None;
                self.pending_recovery_email = None;
                self.pending_login_email = None;
                self.retire_code(CodeSlot::new(CodePurpose::Recovery, crate::Channel::Sms));
                self.retire_code(CodeSlot::new(CodePurpose::Recovery, crate::Channel::Email));
                self.retire_code(CodeSlot::new(
                    CodePurpose::LoginEmail,
                    crate::Channel::Email,
                ));
                // A reset link issued before the freeze may be the intruder's: the owner asks
                // for a new one.
                self.reset_token = None;
                self.codes.retain(|c| c.purpose != CodePurpose::Reset);
            }
            E::ChangeReverted { change, .. } => {
                self.supersede(change.kind());
                self.revert(change);
            }
            E::AccountUnfrozen { .. } => self.frozen_since = None,
        }
    }
}

impl Account {
    /// Restores the value `change` replaced.
    fn revert(&mut self, change: ProtectedChange) {
        match change {
            ProtectedChange::ContactMobile { previous, .. } => self.contact_mobile = previous,
            ProtectedChange::ContactEmail { previous, .. } => self.contact_email = previous,
            ProtectedChange::RecoveryMobile { previous, .. } => {
                self.recovery_mobile = previous;
            }
            ProtectedChange::RecoveryEmail { previous, .. } => self.recovery_email = previous,
            ProtectedChange::LoginEmail { .. } => self.login_email = None,
            ProtectedChange::Password
            | ProtectedChange::PasswordReset
            | ProtectedChange::SignIn { .. } => {}
        }
    }

    /// The account's id; `None` before it was registered.
    pub fn account_id(&self) -> Option<&AccountId> {
        self.id.as_ref()
    }

    /// The version of the current password (0 when there is none), for [`crate::PasswordCheck`].
    pub fn password_version(&self) -> u32 {
        self.password.as_ref().map_or(0, |p| p.version)
    }

    /// The hashes a new password must differ from under a policy keeping `depth` passwords:
    /// the current one and those before it, newest first.
    pub fn recent_password_hashes(&self, depth: usize) -> impl Iterator<Item = &PasswordHash> {
        self.password
            .iter()
            .map(|p| &p.hash)
            .chain(self.previous_password_hashes.iter())
            .take(depth)
    }

    /// Whether `session` holds a step-up that is still valid at `now`.
    pub fn is_verified(&self, session: &SessionId, now: DateTime<Utc>) -> bool {
        self.step_ups
            .iter()
            .any(|s| &s.session_id == session && s.verified_until > now)
    }

    /// The step-up of `session`, if still valid at `now`.
    pub fn verified_until(&self, session: &SessionId, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.step_ups
            .iter()
            .find(|s| &s.session_id == session && s.verified_until > now)
            .map(|s| s.verified_until)
    }

    /// Whether password sign-in is locked at `now`.
    pub fn locked_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    pub fn code_in(&self, slot: CodeSlot) -> Option<&PendingCode> {
        self.codes
            .iter()
            .find(|c| CodeSlot::new(c.purpose, c.channel) == slot)
    }

    fn use_up_code(&mut self, purpose: CodePurpose, channel: crate::Channel) {
        self.retire_code(CodeSlot::new(purpose, channel));
    }

    /// Moves the live code of `slot`, if any, to the retired codes.
    fn retire_code(&mut self, slot: CodeSlot) {
        if let Some(i) = self
            .codes
            .iter()
            .position(|c| CodeSlot::new(c.purpose, c.channel) == slot)
        {
            let retired = self.codes.remove(i);
            if self.retired_codes.len() >= MAX_RETIRED_CODES {
                self.retired_codes.remove(0);
            }
            self.retired_codes.push(retired);
        }
    }

    fn set_password(&mut self, hash: PasswordHash, changed_at: DateTime<Utc>) {
        let version = self.password_version() + 1;
        if let Some(old) = self.password.take() {
            self.previous_password_hashes.insert(0, old.hash);
        }
        // Enough history for any configured depth; the policy decides how much of it counts.
        self.previous_password_hashes
            .truncate(MAX_PASSWORD_HISTORY.saturating_sub(1));
        self.password = Some(PasswordState {
            hash,
            version,
            changed_at,
        });
        // A new password ends every reset link and any reset code.
        self.reset_token = None;
        self.codes.retain(|c| c.purpose != CodePurpose::Reset);
    }

    /// Whether the account is frozen (a protection link was followed and no reset completed).
    pub fn is_frozen(&self) -> bool {
        self.frozen_since.is_some()
    }

    /// Remembers the link of a change's notice, with the change it answers (described from the
    /// state before the change is applied), and forgets links that have lapsed.
    fn remember_protection(&mut self, link: Option<ProtectionLink>, change: ProtectedChange) {
        let Some(link) = link else { return };
        let issued_at = link.expires_at - PROTECTION_TOKEN_TTL;
        // Only when one has lapsed: `retain` writes the shared vector anew.
        if self.protections.iter().any(|p| p.expires_at <= issued_at) {
            self.protections.retain(|p| p.expires_at > issued_at);
        }
        self.supersede(change.kind());
        self.protections.push_back(Protection {
            token_digest: link.token_digest,
            revertible: change.is_revertible(),
            change,
            expires_at: link.expires_at,
        });
    }

    /// Links of earlier changes of the value `kind` can no longer undo them.
    fn supersede(&mut self, kind: &str) {
        // Read first, write only the few still revertible: a write copies only its own path.
        let live: Vec<usize> = (self.protections.iter().enumerate())
            .filter(|(_, p)| p.revertible && p.change.kind() == kind)
            .map(|(i, _)| i)
            .collect();
        for i in live {
            if let Some(p) = self.protections.get_mut(i) {
                p.revertible = false;
            }
        }
    }

    fn password_check_succeeded(&mut self) {
        self.failed_password_checks.clear();
        self.locked_until = None;
    }
}
