//! What the aggregates need from the outside world, behind small traits so that
//! given/when/then tests control it: the time, randomness, keyed hashes and sealing.
//!
//! Password hashing is deliberately *not* here: Argon2 is slow and can run out of
//! capacity (a technical failure), so the command layer verifies and hashes
//! passwords before it executes a command and puts the results in the command
//! (see [`PasswordCheck`]). The aggregate stays synchronous in spirit and free of
//! technical errors.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::password::PasswordPolicy;
use crate::values::VerificationCode;

/// The current time. Injected so tests can move it (code expiry, lockouts, reminders).
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Microsecond precision: what PostgreSQL's `timestamptz` keeps, so a time read back from a
    /// read model equals the one in the event.
    fn now(&self) -> DateTime<Utc> {
        use chrono::DurationRound;
        let now = Utc::now();
        now.duration_trunc(chrono::Duration::microseconds(1))
            .unwrap_or(now)
    }
}

/// Randomness, keyed hashing and sealing of secrets.
pub trait Secrets: Send + Sync {
    /// A fresh, uniformly random six-digit code.
    fn new_code(&self) -> VerificationCode;
    /// The keyed hash (HMAC-SHA256) of a code bound to its owner, purpose, target and id.
    fn code_digest(&self, binding: &str, code: &VerificationCode) -> Digest;
    /// A fresh password-reset token: at least 128 random bits, URL-safe.
    fn new_reset_token(&self) -> ResetToken;
    /// The SHA-256 of a reset token, the only form in which the store keeps it.
    fn token_digest(&self, token: &str) -> Digest;
    /// Seals a secret (AEAD) so that only the notifier can open it for delivery.
    fn seal(&self, plaintext: &str) -> Sealed;
}

/// Everything the aggregates are handed with each command.
#[derive(Clone)]
pub struct DomainServices {
    pub clock: Arc<dyn Clock>,
    pub secrets: Arc<dyn Secrets>,
    /// The provider's password policy: history depth and reminder age are used here.
    pub password_policy: PasswordPolicy,
}

impl fmt::Debug for DomainServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainServices")
            .field("password_policy", &self.password_policy)
            .finish_non_exhaustive()
    }
}

/// A lowercase hex digest (HMAC-SHA256 of a code, SHA-256 of a token). Compared in constant time.
#[derive(Clone, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest(String);

impl std::hash::Hash for Digest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Digest {
    pub fn from_hex(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Digest {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but it is not worth a log line either.
        let shown = self.0.get(..8).unwrap_or(&self.0);
        write!(f, "Digest({shown}…)")
    }
}

/// A secret sealed for the notifier: the key it was sealed with and the base64 of nonce ‖ ciphertext.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub key_id: String,
    pub ciphertext: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed(key {})", self.key_id)
    }
}

/// A password-reset token in clear: it exists only between its creation and its sealing.
#[derive(Clone)]
pub struct ResetToken(String);

impl ResetToken {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResetToken(***)")
    }
}

/// An Argon2id PHC string. Never shown: redacted in logs, on the bus and in audit output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_phc(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// The result of an Argon2 verification done by the command layer before the command runs,
/// together with the version of the password it was checked against. The aggregate refuses a
/// check made against another version (the password changed in between): the caller re-checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    pub against_version: u32,
    pub matches: bool,
}

/// Whether a new password equals one of the last passwords (history depth of the policy),
/// checked by the command layer against the hashes of `against_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseCheck {
    pub against_version: u32,
    pub reused: bool,
}

/// The opaque id of a session (not its bearer token). A step-up belongs to one session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
