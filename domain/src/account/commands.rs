//! Commands of the account aggregate: imperative names, already-parsed values, and whatever
//! the command layer looked up or computed before (password checks, new hashes, ids).

use crate::codes::Channel;
use crate::services::{Digest, PasswordCheck, PasswordHash, ReuseCheck, SessionId};
use crate::values::{AccountId, Email, Mobile, ServerIp, VerificationCode};

use super::events::{AccountSummary, RecoveryMethod, SignInClient, VerificationMethod};

#[derive(Debug, Clone)]
pub enum AccountCommand {
    /// Sign-up by email: the login email also becomes the (unverified) contact email and a
    /// code is sent to it.
    RegisterWithEmail {
        account_id: AccountId,
        login_email: Email,
        password_hash: PasswordHash,
        code_id: String,
    },
    /// Sign-up by a mobile already proved by a challenge.
    RegisterWithMobile {
        account_id: AccountId,
        mobile: Mobile,
    },

    /// A successful sign-in (the password was checked by the command layer, or the SMS
    /// challenge passed). `new_client` is the client when the command layer found no recent
    /// session of the account from it (and the new-sign-in notice is on): the sign-in is then
    /// recorded with a protection link for its notice.
    SignInWithPassword {
        check: PasswordCheck,
        session_id: SessionId,
        new_client: Option<SignInClient>,
    },
    SignInWithSms {
        session_id: SessionId,
        new_client: Option<SignInClient>,
    },

    /// Step-up by code: sends a code to the recovery mobile or recovery email.
    StartIdentityVerification {
        verification_id: String,
        method: VerificationMethod,
        session_id: SessionId,
    },
    ConfirmIdentityWithCode {
        verification_id: String,
        session_id: SessionId,
        code: VerificationCode,
    },
    ConfirmIdentityWithPassword {
        verification_id: String,
        session_id: SessionId,
        check: PasswordCheck,
    },

    ChangeContactMobile {
        session_id: SessionId,
        mobile: Mobile,
        code_id: String,
    },
    ChangeContactEmail {
        session_id: SessionId,
        email: Email,
        code_id: String,
    },
    VerifyContact {
        channel: Channel,
        code: VerificationCode,
    },

    RequestRecoveryMobileChange {
        session_id: SessionId,
        mobile: Mobile,
        code_id: String,
    },
    RequestRecoveryEmailChange {
        session_id: SessionId,
        email: Email,
        code_id: String,
    },
    ConfirmRecoveryChange {
        channel: Channel,
        code: VerificationCode,
    },

    RequestLoginEmailBinding {
        session_id: SessionId,
        email: Email,
        /// Required exactly when the account has no password.
        password_hash: Option<PasswordHash>,
        code_id: String,
    },
    ConfirmLoginEmailBinding {
        code: VerificationCode,
    },

    /// `PUT /v1/me/password`; the new password already passed the policy and matched its
    /// confirmation.
    ChangePassword {
        session_id: SessionId,
        current: PasswordCheck,
        reuse: ReuseCheck,
        new_hash: PasswordHash,
    },

    IssueResetToken,
    SendResetCode {
        token_digest: Digest,
        channel: Channel,
        code_id: String,
    },
    CompleteReset {
        token_digest: Digest,
        reuse: ReuseCheck,
        new_hash: PasswordHash,
        code: Option<VerificationCode>,
    },

    RecordRecoveryRequest {
        method: RecoveryMethod,
        recovery_id: Option<String>,
    },
    RecordRecoveryConfirmationFailure {
        recovery_id: String,
    },
    RecordAccountInfoSent {
        message_id: String,
        mobile: Mobile,
        accounts: Vec<AccountSummary>,
    },

    AssignServerIp {
        instance_id: String,
        ip: ServerIp,
    },
    ReleaseServerIp {
        instance_id: String,
    },

    /// A protection link was followed ("this wasn't me"): freeze, and revert the change the
    /// link's notice was about where it still stands.
    FreezeAccount {
        token_digest: Digest,
    },

    /// Sent by the reminder sweep; does nothing unless the password just crossed the age.
    SendPasswordExpiryReminder,
}
