//! "This wasn't me": the single-use link every security notice carries (docs/adr/0009).
//!
//! Each change that sends a security notice mints a protection token with its own event
//! ([`ProtectionLink`] in the event's `protection` field), so the notifier can put the link in
//! that notice. The state remembers, per live token, the change it answers
//! ([`ProtectedChange`]). Following the link freezes the account (`AccountFrozen`) and reverts
//! that change where it still stands (`ChangeReverted`); a completed reset unfreezes it
//! (`AccountUnfrozen`).
//!
//! A token is `<account id>.<random>`: the account it belongs to is read from the token itself,
//! so following a link needs no index written after the change commits (nothing to lose in a
//! crash between the two), and the aggregate alone decides whether the token is live.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::events::Verifiable;
use crate::services::{Digest, Sealed, SessionId};
use crate::values::{AccountId, Email, Mobile};

/// What a change event carries so that its notice can carry the link: the token's SHA-256 (to
/// check it against) and the token sealed for the notifier. Never the token in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectionLink {
    pub token_digest: Digest,
    pub sealed_token: Sealed,
    pub expires_at: DateTime<Utc>,
}

/// A change a protection link answers, with what a reviewer needs to see and a revert needs
/// to undo it: the value before and the value it set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProtectedChange {
    ContactMobile {
        previous: Option<Verifiable<Mobile>>,
        mobile: Mobile,
    },
    ContactEmail {
        previous: Option<Verifiable<Email>>,
        email: Email,
    },
    RecoveryMobile {
        previous: Option<Mobile>,
        mobile: Mobile,
    },
    RecoveryEmail {
        previous: Option<Email>,
        email: Email,
    },
    /// A login email bound to an account that had none.
    LoginEmail { email: Email },
    /// The password changed, or was set at a login-email binding: nothing to restore (the old
    /// hash is not a value the owner can be given back safely); the freeze forces a reset.
    Password,
    /// The password was reset from an emailed link: likewise only a freeze.
    PasswordReset,
    /// A sign-in from a client new to the account (its new-sign-in notice): nothing to
    /// restore; the freeze ends every session, that sign-in's too.
    SignIn {
        session_id: SessionId,
        ip: Option<IpAddr>,
        user_agent: Option<String>,
    },
}

impl ProtectedChange {
    /// The change's name as stored in `kind` (`recovery_mobile`, `password`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ContactMobile { .. } => "contact_mobile",
            Self::ContactEmail { .. } => "contact_email",
            Self::RecoveryMobile { .. } => "recovery_mobile",
            Self::RecoveryEmail { .. } => "recovery_email",
            Self::LoginEmail { .. } => "login_email",
            Self::Password => "password",
            Self::PasswordReset => "password_reset",
            Self::SignIn { .. } => "sign_in",
        }
    }

    /// Whether a revert can restore the value before this change (passwords cannot be, and a
    /// sign-in set no value).
    pub fn is_revertible(&self) -> bool {
        !matches!(
            self,
            Self::Password | Self::PasswordReset | Self::SignIn { .. }
        )
    }
}

/// A live protection token as the account state keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    pub token_digest: Digest,
    pub change: ProtectedChange,
    pub expires_at: DateTime<Utc>,
    /// Whether following the link may still undo its change: only until a later change (or a
    /// revert) of the same value, so an old link never undoes a newer value that happens to
    /// equal the one it set.
    pub revertible: bool,
}

/// Why an account was unfrozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnfreezeReason {
    /// The owner completed a password reset.
    PasswordReset,
}

/// The token of a link: `<account id>.<random>`, the random part minted like a reset token.
pub fn protection_token(account: &AccountId, random: &str) -> String {
    format!("{}.{random}", account.as_str())
}

/// The account a protection token names, when the token is well-formed. Says nothing about
/// whether the token is live: only that account's state can tell.
pub fn protection_token_account(token: &str) -> Option<AccountId> {
    let (account, random) = token.split_once('.')?;
    if random.is_empty() {
        return None;
    }
    AccountId::parse(account).ok()
}
