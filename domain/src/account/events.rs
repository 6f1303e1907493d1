//! Every event of the account stream (SPEC §4). Names are part of the contract: the variant
//! name is the stored `event_type`, and a test pins them all.
//!
//! Times that rules depend on travel in the payload (`at`, `expires_at`, …) because `apply`
//! sees only the event, never the metadata.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::protection::{ProtectedChange, ProtectionLink, UnfreezeReason};
use crate::codes::{Channel, CodePurpose};
use crate::rules::USER_AGENT_MAX_CHARS;
use crate::services::{Digest, PasswordHash, Sealed, SessionId};
use crate::values::{AccountId, Email, Mobile, ServerIp};

/// A contact value and whether its holder proved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verifiable<T> {
    pub value: T,
    pub verified: bool,
}

/// How an identity was verified (step-up) or how someone signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    Sms,
    Email,
    Password,
}

impl VerificationMethod {
    pub fn channel(self) -> Option<Channel> {
        match self {
            Self::Sms => Some(Channel::Sms),
            Self::Email => Some(Channel::Email),
            Self::Password => None,
        }
    }
}

/// Why a password changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangeReason {
    /// `PUT /v1/me/password`.
    Change,
    /// The password set when a login email was bound to an account without one.
    LoginEmailBound,
}

/// How someone asked to recover their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMethod {
    Mobile,
    AccountId,
    ServerIp,
}

/// The client a sign-in comes from: the request's address and user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInClient {
    pub ip: Option<IpAddr>,
    /// At most [`USER_AGENT_MAX_CHARS`] characters: enough to name a browser in a notice, and
    /// no client-written header of kilobytes in every event.
    pub user_agent: Option<String>,
}

impl SignInClient {
    /// The client of a request, its user agent cut to [`USER_AGENT_MAX_CHARS`] characters
    /// and control characters dropped (it is shown in a notice's text).
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|agent| {
                agent
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(USER_AGENT_MAX_CHARS)
                    .collect::<String>()
            })
            .filter(|agent| !agent.trim().is_empty());
        Self { ip, user_agent }
    }
}

/// A sign-in from a client the account had no session from lately (docs/adr/0009): its
/// notice goes to the contact email with a protection link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewClient {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// The link of the new-sign-in notice: following it ends every session (this sign-in's
    /// too) and freezes the account; a sign-in has no value to restore.
    pub protection: ProtectionLink,
}

/// One account line of an account-information message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub account_id: AccountId,
    /// `j***n@example.com`, or none when the account has no login email.
    pub masked_login_email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    AccountRegistered {
        account_id: AccountId,
        login_email: Option<Email>,
        login_mobile: Option<Mobile>,
        contact_mobile: Option<Verifiable<Mobile>>,
        contact_email: Option<Verifiable<Email>>,
        recovery_mobile: Option<Mobile>,
        password_hash: Option<PasswordHash>,
        registered_at: DateTime<Utc>,
    },
    VerificationCodeIssued {
        code_id: String,
        purpose: CodePurpose,
        channel: Channel,
        target: String,
        code_digest: Digest,
        sealed_code: Sealed,
        expires_at: DateTime<Utc>,
        bound_to: Option<String>,
    },
    VerificationFailed {
        code_id: String,
        purpose: CodePurpose,
        failures: u8,
        at: DateTime<Utc>,
    },
    IdentityVerified {
        verification_id: String,
        method: VerificationMethod,
        session_id: SessionId,
        verified_until: DateTime<Utc>,
    },
    ContactMobileChanged {
        previous: Option<Mobile>,
        mobile: Mobile,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    ContactEmailChanged {
        previous: Option<Email>,
        email: Email,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    ContactMobileVerified {
        mobile: Mobile,
    },
    ContactEmailVerified {
        email: Email,
    },
    RecoveryMobileChangeRequested {
        mobile: Mobile,
    },
    RecoveryEmailChangeRequested {
        email: Email,
    },
    RecoveryMobileChanged {
        previous: Option<Mobile>,
        mobile: Mobile,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    RecoveryEmailChanged {
        previous: Option<Email>,
        email: Email,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    LoginEmailBindingRequested {
        email: Email,
        /// The password chosen for an account that had none; set at confirmation.
        password_hash: Option<PasswordHash>,
    },
    LoginEmailBound {
        email: Email,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    PasswordChanged {
        password_hash: PasswordHash,
        reason: PasswordChangeReason,
        changed_at: DateTime<Utc>,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    ResetTokenIssued {
        token_digest: Digest,
        sealed_token: Sealed,
        login_email: Email,
        expires_at: DateTime<Utc>,
    },
    PasswordReset {
        password_hash: PasswordHash,
        reset_at: DateTime<Utc>,
        /// The link of this change's security notice (docs/adr/0009); absent on events
        /// recorded before protection links existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protection: Option<ProtectionLink>,
    },
    /// Recorded at each successful sign-in; it ends a run of failed password checks.
    /// Not in SPEC §4's table: without it the aggregate could not tell that "a success resets
    /// the count" (see docs/adr/0002-domain-model.md).
    SignedIn {
        method: VerificationMethod,
        session_id: SessionId,
        at: DateTime<Utc>,
        /// Set when the client was new to the account (no session from the same IP and user
        /// agent lately): the sign-in is notified with a protection link. Absent otherwise, and
        /// on events recorded before new-sign-in notices existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_client: Option<NewClient>,
    },
    SignInFailed {
        consecutive_failures: u32,
        at: DateTime<Utc>,
    },
    SignInLocked {
        until: DateTime<Utc>,
    },
    AccountRecoveryRequested {
        method: RecoveryMethod,
        recovery_id: Option<String>,
    },
    AccountRecoveryConfirmationFailed {
        recovery_id: String,
    },
    AccountInfoSent {
        message_id: String,
        mobile: Mobile,
        accounts: Vec<AccountSummary>,
    },
    ServerIpAssigned {
        instance_id: String,
        public_ip: ServerIp,
        assigned_at: DateTime<Utc>,
    },
    ServerIpReleased {
        instance_id: String,
        public_ip: ServerIp,
        released_at: DateTime<Utc>,
    },
    PasswordExpiryReminderSent {
        password_changed_at: DateTime<Utc>,
    },
    /// A protection link was followed: every session ended, password sign-in and sensitive
    /// changes refused until a completed reset. Names the change whose notice carried the link.
    AccountFrozen {
        change: ProtectedChange,
        token_digest: Digest,
        frozen_at: DateTime<Utc>,
    },
    /// The change a followed protection link answered was undone: its value before is restored
    /// (recorded after `AccountFrozen`, only while the change still stands).
    ChangeReverted {
        change: ProtectedChange,
        reverted_at: DateTime<Utc>,
    },
    /// The freeze ended.
    AccountUnfrozen {
        reason: UnfreezeReason,
        unfrozen_at: DateTime<Utc>,
    },
}

impl AccountEvent {
    /// Every stored event type, in SPEC §4 order (plus `SignedIn`, then the protection events of
    /// docs/adr/0009). Pinned by a test.
    pub const TYPES: [&'static str; 29] = [
        "AccountRegistered",
        "VerificationCodeIssued",
        "VerificationFailed",
        "IdentityVerified",
        "ContactMobileChanged",
        "ContactEmailChanged",
        "ContactMobileVerified",
        "ContactEmailVerified",
        "RecoveryMobileChangeRequested",
        "RecoveryEmailChangeRequested",
        "RecoveryMobileChanged",
        "RecoveryEmailChanged",
        "LoginEmailBindingRequested",
        "LoginEmailBound",
        "PasswordChanged",
        "ResetTokenIssued",
        "PasswordReset",
        "SignedIn",
        "SignInFailed",
        "SignInLocked",
        "AccountRecoveryRequested",
        "AccountRecoveryConfirmationFailed",
        "AccountInfoSent",
        "ServerIpAssigned",
        "ServerIpReleased",
        "PasswordExpiryReminderSent",
        "AccountFrozen",
        "ChangeReverted",
        "AccountUnfrozen",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::AccountRegistered { .. } => "AccountRegistered",
            Self::VerificationCodeIssued { .. } => "VerificationCodeIssued",
            Self::VerificationFailed { .. } => "VerificationFailed",
            Self::IdentityVerified { .. } => "IdentityVerified",
            Self::ContactMobileChanged { .. } => "ContactMobileChanged",
            Self::ContactEmailChanged { .. } => "ContactEmailChanged",
            Self::ContactMobileVerified { .. } => "ContactMobileVerified",
            Self::ContactEmailVerified { .. } => "ContactEmailVerified",
            Self::RecoveryMobileChangeRequested { .. } => "RecoveryMobileChangeRequested",
            Self::RecoveryEmailChangeRequested { .. } => "RecoveryEmailChangeRequested",
            Self::RecoveryMobileChanged { .. } => "RecoveryMobileChanged",
            Self::RecoveryEmailChanged { .. } => "RecoveryEmailChanged",
            Self::LoginEmailBindingRequested { .. } => "LoginEmailBindingRequested",
            Self::LoginEmailBound { .. } => "LoginEmailBound",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::ResetTokenIssued { .. } => "ResetTokenIssued",
            Self::PasswordReset { .. } => "PasswordReset",
            Self::SignedIn { .. } => "SignedIn",
            Self::SignInFailed { .. } => "SignInFailed",
            Self::SignInLocked { .. } => "SignInLocked",
            Self::AccountRecoveryRequested { .. } => "AccountRecoveryRequested",
            Self::AccountRecoveryConfirmationFailed { .. } => "AccountRecoveryConfirmationFailed",
            Self::AccountInfoSent { .. } => "AccountInfoSent",
            Self::ServerIpAssigned { .. } => "ServerIpAssigned",
            Self::ServerIpReleased { .. } => "ServerIpReleased",
            Self::PasswordExpiryReminderSent { .. } => "PasswordExpiryReminderSent",
            Self::AccountFrozen { .. } => "AccountFrozen",
            Self::ChangeReverted { .. } => "ChangeReverted",
            Self::AccountUnfrozen { .. } => "AccountUnfrozen",
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}
