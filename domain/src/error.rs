//! The one domain error: a variant per rule of SPEC §2. No technical errors live here; the
//! gateway maps each variant to its problem code in one `match`.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::password::PasswordPolicyViolation;
use crate::values::ValueError;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error(transparent)]
    InvalidValue(#[from] ValueError),
    #[error(transparent)]
    PasswordPolicy(#[from] PasswordPolicyViolation),
    #[error("the new password and its confirmation differ")]
    PasswordMismatch,
    #[error("the new password must differ from the last passwords")]
    PasswordReused,

    #[error("the account does not exist")]
    AccountNotFound,
    #[error("the account already exists")]
    AccountAlreadyExists,
    #[error("this request needs a recent identity verification")]
    IdentityVerificationRequired,
    #[error("the account has no {0} to verify with")]
    VerificationMethodUnavailable(&'static str),
    #[error("the code is wrong")]
    InvalidCode,
    #[error("the code has expired or is no longer valid; ask for a new one")]
    CodeExpired,
    #[error("a verification code is required")]
    CodeRequired,
    #[error("wrong credentials")]
    InvalidCredentials,
    #[error("password sign-in is locked after too many failures")]
    Locked { until: DateTime<Utc> },
    /// The password changed between the command layer's check and the command: check again.
    #[error("the password changed while the request was checked")]
    StalePasswordCheck,

    #[error("the account has no login email")]
    LoginEmailRequired,
    #[error("the account already has a login email")]
    LoginEmailAlreadyBound,
    #[error("a password is required to bind a login email to an account without one")]
    PasswordRequired,
    #[error("the account already has a password; change it separately")]
    PasswordAlreadySet,
    #[error("the value is already in use")]
    Conflict,
    #[error("that is already the current, verified value")]
    AlreadyCurrent,

    #[error("the password reset link is invalid or has expired")]
    ResetTokenInvalid,

    #[error("the link to secure the account is invalid, used or expired")]
    ProtectionTokenInvalid,
    #[error("the account is frozen until its password is reset")]
    AccountFrozen,

    #[error("the server instance is already recorded")]
    ServerInstanceTaken,
    #[error("the server instance is unknown")]
    ServerNotFound,

    #[error("the recovery is closed")]
    RecoveryClosed,
}

/// A failure of the adapter behind a port (a store, the bus): what the side that called it
/// needs to report or retry, with the adapter's own error kept as the source rather than
/// flattened into text.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PortError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl PortError {
    /// Wraps an adapter's error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }

    /// A failure that has only a message (a task that did not finish, a value out of range).
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}
