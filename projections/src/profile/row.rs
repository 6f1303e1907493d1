//! The profile reducer: one row per account, folded from the account's events. It keeps the
//! facts the lookups and the reminder sweep search; the profile itself (and every rule of SPEC
//! §2) is the domain's `Account::profile`.

use chrono::{DateTime, Utc};
use domain::account::{AccountEvent, ProtectedChange};

#[derive(Debug, Clone, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct ServerRow {
    pub account_id: String,
    pub instance_id: String,
    pub public_ip: String,
    pub assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProfileRow {
    pub account_id: String,
    pub last_sequence: i64,
    pub registered_at: DateTime<Utc>,
    pub login_email: Option<String>,
    pub login_mobile: Option<String>,
    pub contact_mobile: Option<String>,
    pub contact_mobile_verified: bool,
    pub contact_email: Option<String>,
    pub contact_email_verified: bool,
    pub recovery_mobile: Option<String>,
    pub recovery_email: Option<String>,
    pub pending_recovery_mobile: Option<String>,
    pub pending_recovery_email: Option<String>,
    pub pending_login_email: Option<String>,
    pub password_set: bool,
    pub password_changed_at: Option<DateTime<Utc>>,
    pub reminded_for: Option<DateTime<Utc>>,
    pub reset_token_digest: Option<String>,
    pub reset_token_expires_at: Option<DateTime<Utc>>,
    /// Not a column of `profiles`: the account's rows of `servers`.
    #[sqlx(skip)]
    pub servers: Vec<ServerRow>,
}

impl ProfileRow {
    /// The row an `AccountRegistered` creates; `None` for any other event (it needs a row).
    pub fn registered(account_id: &str, sequence: i64, event: &AccountEvent) -> Option<Self> {
        let AccountEvent::AccountRegistered {
            login_email,
            login_mobile,
            contact_mobile,
            contact_email,
            recovery_mobile,
            password_hash,
            registered_at,
            ..
        } = event
        else {
            return None;
        };
        Some(Self {
            account_id: account_id.to_owned(),
            last_sequence: sequence,
            registered_at: *registered_at,
            login_email: login_email.as_ref().map(|e| e.as_str().to_owned()),
            login_mobile: login_mobile.as_ref().map(|m| m.as_str().to_owned()),
            contact_mobile: contact_mobile.as_ref().map(|c| c.value.as_str().to_owned()),
            contact_mobile_verified: contact_mobile.as_ref().is_some_and(|c| c.verified),
            contact_email: contact_email.as_ref().map(|c| c.value.as_str().to_owned()),
            contact_email_verified: contact_email.as_ref().is_some_and(|c| c.verified),
            recovery_mobile: recovery_mobile.as_ref().map(|m| m.as_str().to_owned()),
            recovery_email: None,
            pending_recovery_mobile: None,
            pending_recovery_email: None,
            pending_login_email: None,
            password_set: password_hash.is_some(),
            password_changed_at: password_hash.as_ref().map(|_| *registered_at),
            reminded_for: None,
            reset_token_digest: None,
            reset_token_expires_at: None,
            servers: Vec::new(),
        })
    }

    /// Folds event `sequence` into the row. An event at or below `last_sequence` was applied
    /// already and changes nothing; returns whether the row changed.
    pub fn apply(&mut self, sequence: i64, event: &AccountEvent) -> bool {
        if sequence <= self.last_sequence {
            return false;
        }
        self.last_sequence = sequence;
        use AccountEvent as E;
        match event {
            E::AccountRegistered { .. } => {}
            E::ContactMobileChanged { mobile, .. } => {
                self.contact_mobile = Some(mobile.as_str().to_owned());
                self.contact_mobile_verified = false;
            }
            E::ContactEmailChanged { email, .. } => {
                self.contact_email = Some(email.as_str().to_owned());
                self.contact_email_verified = false;
            }
            E::ContactMobileVerified { .. } => self.contact_mobile_verified = true,
            E::ContactEmailVerified { .. } => self.contact_email_verified = true,
            E::RecoveryMobileChangeRequested { mobile } => {
                self.pending_recovery_mobile = Some(mobile.as_str().to_owned());
            }
            E::RecoveryEmailChangeRequested { email } => {
                self.pending_recovery_email = Some(email.as_str().to_owned());
            }
            E::RecoveryMobileChanged { mobile, .. } => {
                self.recovery_mobile = Some(mobile.as_str().to_owned());
                self.pending_recovery_mobile = None;
            }
            E::RecoveryEmailChanged { email, .. } => {
                self.recovery_email = Some(email.as_str().to_owned());
                self.pending_recovery_email = None;
            }
            E::LoginEmailBindingRequested { email, .. } => {
                self.pending_login_email = Some(email.as_str().to_owned());
            }
            E::LoginEmailBound { email, .. } => {
                self.login_email = Some(email.as_str().to_owned());
                self.pending_login_email = None;
            }
            E::PasswordChanged { changed_at, .. } => self.password_changed(*changed_at),
            E::PasswordReset { reset_at, .. } => self.password_changed(*reset_at),
            E::ResetTokenIssued {
                token_digest,
                expires_at,
                ..
            } => {
                self.reset_token_digest = Some(token_digest.as_hex().to_owned());
                self.reset_token_expires_at = Some(*expires_at);
            }
            E::ServerIpAssigned {
                instance_id,
                public_ip,
                assigned_at,
            } => self.servers.push(ServerRow {
                account_id: self.account_id.clone(),
                instance_id: instance_id.clone(),
                public_ip: public_ip.as_str().to_owned(),
                assigned_at: *assigned_at,
            }),
            E::ServerIpReleased { instance_id, .. } => {
                self.servers.retain(|s| &s.instance_id != instance_id);
            }
            E::PasswordExpiryReminderSent {
                password_changed_at,
            } => self.reminded_for = Some(*password_changed_at),
            E::AccountFrozen { .. } => {
                // The freeze ends pending changes and the live reset link (domain `apply`); the
                // frozen state itself is the domain's profile (docs/adr/0009).
                self.pending_recovery_mobile = None;
                self.pending_recovery_email = None;
                self.pending_login_email = None;
                self.reset_token_digest = None;
                self.reset_token_expires_at = None;
            }
            E::ChangeReverted { change, .. } => self.revert(change),
            E::AccountUnfrozen { .. } => {}
            E::VerificationCodeIssued { .. }
            | E::VerificationFailed { .. }
            | E::IdentityVerified { .. }
            | E::SignedIn { .. }
            | E::SignInFailed { .. }
            | E::SignInLocked { .. }
            | E::AccountRecoveryRequested { .. }
            | E::AccountRecoveryConfirmationFailed { .. }
            | E::AccountInfoSent { .. } => {}
        }
        true
    }

    /// Restores the value `change` replaced, as the domain's `apply` does.
    fn revert(&mut self, change: &ProtectedChange) {
        match change {
            ProtectedChange::ContactMobile { previous, .. } => {
                self.contact_mobile = previous.as_ref().map(|p| p.value.as_str().to_owned());
                self.contact_mobile_verified = previous.as_ref().is_some_and(|p| p.verified);
            }
            ProtectedChange::ContactEmail { previous, .. } => {
                self.contact_email = previous.as_ref().map(|p| p.value.as_str().to_owned());
                self.contact_email_verified = previous.as_ref().is_some_and(|p| p.verified);
            }
            ProtectedChange::RecoveryMobile { previous, .. } => {
                self.recovery_mobile = previous.as_ref().map(|m| m.as_str().to_owned());
            }
            ProtectedChange::RecoveryEmail { previous, .. } => {
                self.recovery_email = previous.as_ref().map(|e| e.as_str().to_owned());
            }
            ProtectedChange::LoginEmail { .. } => self.login_email = None,
            ProtectedChange::Password
            | ProtectedChange::PasswordReset
            | ProtectedChange::SignIn { .. } => {}
        }
    }

    fn password_changed(&mut self, at: DateTime<Utc>) {
        self.password_set = true;
        self.password_changed_at = Some(at);
        // A new password ends every reset link.
        self.reset_token_digest = None;
        self.reset_token_expires_at = None;
    }
}
