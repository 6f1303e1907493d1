//! "This wasn't me" (docs/adr/0009): minting the link each security notice carries, and
//! following it.
//!
//! Following a link is anonymous, so everything it can do is chosen to only remove access: it
//! freezes the account (sessions end, password sign-in and sensitive changes are refused until a
//! completed reset), and it restores the value the change replaced, which the account had and
//! proved before. It never sets a value of the follower's choosing. A link works once, only
//! for its own change, and reverts that change only while the change still stands.

use super::Decision;
use crate::account::protection::protection_token;
use crate::account::{Account, AccountEvent, ProtectedChange, Protection, ProtectionLink};
use crate::error::DomainError;
use crate::rules::PROTECTION_TOKEN_TTL;
use crate::services::{Digest, DomainServices};

impl Account {
    /// A fresh link for the notice of a change this command records: ≥128 random bits (minted
    /// like a reset token), kept as SHA-256, sealed for the notifier.
    pub(super) fn protection_link(&self, services: &DomainServices) -> ProtectionLink {
        let random = services.secrets.new_reset_token();
        let token = protection_token(self.owner(), random.expose_secret());
        ProtectionLink {
            token_digest: services.secrets.token_digest(&token),
            sealed_token: services.secrets.seal(&token),
            expires_at: services.clock.now() + PROTECTION_TOKEN_TTL,
        }
    }

    /// Refuses a sensitive change while the account is frozen.
    pub fn require_not_frozen(&self) -> Result<(), DomainError> {
        if self.is_frozen() {
            Err(DomainError::AccountFrozen)
        } else {
            Ok(())
        }
    }

    /// The live protection link of `token_digest`.
    pub fn protection(
        &self,
        token_digest: &Digest,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<&Protection, DomainError> {
        self.protections
            .iter()
            .find(|p| &p.token_digest == token_digest && now < p.expires_at)
            .ok_or(DomainError::ProtectionTokenInvalid)
    }

    pub(super) fn decide_freeze(
        &self,
        token_digest: Digest,
        services: &DomainServices,
    ) -> Decision {
        let now = services.clock.now();
        let protection = self.protection(&token_digest, now)?;
        let change = protection.change.clone();
        let revert = protection.revertible && self.still_stands(&change);
        let mut events = vec![AccountEvent::AccountFrozen {
            change: change.clone(),
            token_digest,
            frozen_at: now,
        }];
        if revert {
            events.push(AccountEvent::ChangeReverted {
                change,
                reverted_at: now,
            });
        }
        Ok(events)
    }

    /// Whether the value `change` set is still the current one (a second guard beside
    /// `Protection::revertible`): a later value is never overwritten by a revert.
    fn still_stands(&self, change: &ProtectedChange) -> bool {
        match change {
            ProtectedChange::ContactMobile { mobile, .. } => self
                .contact_mobile
                .as_ref()
                .is_some_and(|c| &c.value == mobile),
            ProtectedChange::ContactEmail { email, .. } => self
                .contact_email
                .as_ref()
                .is_some_and(|c| &c.value == email),
            ProtectedChange::RecoveryMobile { mobile, .. } => {
                self.recovery_mobile.as_ref() == Some(mobile)
            }
            ProtectedChange::RecoveryEmail { email, .. } => {
                self.recovery_email.as_ref() == Some(email)
            }
            ProtectedChange::LoginEmail { email } => self.login_email.as_ref() == Some(email),
            ProtectedChange::Password
            | ProtectedChange::PasswordReset
            | ProtectedChange::SignIn { .. } => false,
        }
    }
}
