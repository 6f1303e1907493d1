//! Verification codes as the aggregates keep them: which purpose and target a code is for,
//! its keyed hash, when it dies, and how many wrong attempts it has had.
//!
//! The code itself never reaches an event: [`PendingCode`] holds its HMAC (to check against)
//! and the event that issued it holds a sealed copy that only the notifier opens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::rules::CODE_MAX_FAILURES;
use crate::services::{Digest, Secrets};
use crate::values::VerificationCode;

/// Why a code was sent. Persisted (snake_case) and used as a rate-limit key: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodePurpose {
    Signup,
    Login,
    StepUp,
    Contact,
    Recovery,
    LoginEmail,
    Reset,
}

impl CodePurpose {
    pub const ALL: [CodePurpose; 7] = [
        Self::Signup,
        Self::Login,
        Self::StepUp,
        Self::Contact,
        Self::Recovery,
        Self::LoginEmail,
        Self::Reset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::StepUp => "step_up",
            Self::Contact => "contact",
            Self::Recovery => "recovery",
            Self::LoginEmail => "login_email",
            Self::Reset => "reset",
        }
    }
}

/// Where a code (or any message) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
}

/// The slot a code lives in: a newer code in the same slot replaces the older one.
///
/// For step-up and reset codes the slot is the purpose alone: the newest code the person asked
/// for is the one that counts, whichever channel it went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CodeSlot {
    pub purpose: CodePurpose,
    pub channel: Option<Channel>,
}

impl CodeSlot {
    pub fn new(purpose: CodePurpose, channel: Channel) -> Self {
        let channel = match purpose {
            CodePurpose::StepUp | CodePurpose::Reset => None,
            _ => Some(channel),
        };
        Self { purpose, channel }
    }
}

/// A live code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCode {
    pub code_id: String,
    pub purpose: CodePurpose,
    pub channel: Channel,
    /// E.164 mobile or email the code was sent to.
    pub target: String,
    pub digest: Digest,
    pub expires_at: DateTime<Utc>,
    pub failures: u8,
    /// What else the code is bound to: the session of a step-up, the token of a reset.
    pub bound_to: Option<String>,
}

/// What checking a code against a pending one says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Matches,
    /// Wrong; `failures` counts this attempt too.
    Wrong {
        failures: u8,
    },
    /// Expired, dead (too many failures), replaced, used, or never issued.
    Expired,
}

/// The string a code's HMAC is bound to: owner, purpose, target and code id.
pub fn binding(owner: &str, purpose: CodePurpose, target: &str, code_id: &str) -> String {
    format!(
        "{owner}\u{1f}{}\u{1f}{target}\u{1f}{code_id}",
        purpose.as_str()
    )
}

impl PendingCode {
    /// Whether `code` is this code, whatever its age or attempts.
    pub fn is_answered_by(
        &self,
        owner: &str,
        code: &VerificationCode,
        secrets: &dyn Secrets,
    ) -> bool {
        let expected = binding(owner, self.purpose, &self.target, &self.code_id);
        secrets.code_digest(&expected, code) == self.digest
    }

    /// Checks `code` as the answer to this pending code of `owner` at `now`.
    pub fn check(
        &self,
        owner: &str,
        code: &VerificationCode,
        now: DateTime<Utc>,
        secrets: &dyn Secrets,
    ) -> CodeCheck {
        if now >= self.expires_at || self.failures >= CODE_MAX_FAILURES {
            return CodeCheck::Expired;
        }
        if self.is_answered_by(owner, code, secrets) {
            CodeCheck::Matches
        } else {
            CodeCheck::Wrong {
                failures: self.failures + 1,
            }
        }
    }
}
