//! The flows the gateway calls, one file each. A flow does what one aggregate cannot: look up
//! other accounts or read models, claim values across accounts, count rate limits, run Argon2,
//! keep sessions; the rules themselves stay in the domain.

mod account_recovery;
mod contact;
mod login_email;
mod password;
mod protection;
mod recovery_values;
mod reset;
mod servers;
mod sign_in;
mod sign_up;
mod step_up;

pub use account_recovery::{RecoveryStarted, RecoveryTicket};
pub use protection::Secured;
pub use reset::ResetMethod;
pub use sign_in::{SignedIn, REFUSED_SIGN_IN_FLOOR};
pub use sign_up::{CodeTicket, SmsPurpose};
pub use step_up::{IdentityProof, VerificationStarted};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::account::VerificationMethod;
use domain::values::{AccountId, Email, Mobile};
use domain::{Account, DomainError};
use rand::Rng;

use crate::service::ServiceError;

/// A fresh opaque secret: 256 random bits, URL-safe.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

/// The masked form of where a step-up or reset code for `method` goes.
pub(crate) fn masked_target(account: &Account, method: VerificationMethod) -> Option<String> {
    match method {
        VerificationMethod::Sms => account.recovery_mobile.as_ref().map(Mobile::masked),
        VerificationMethod::Email => account.recovery_email.as_ref().map(Email::masked),
        VerificationMethod::Password => None,
    }
}

/// An account that must exist.
pub(crate) fn registered(
    loaded: crate::Loaded<Account>,
) -> Result<std::sync::Arc<Account>, ServiceError> {
    if loaded.state.id.is_none() {
        return Err(DomainError::AccountNotFound.into());
    }
    Ok(loaded.state)
}

impl crate::service::CommandService {
    /// A change that needs the session's step-up and sends a code to `target` (counted against
    /// the code limits under `purpose`): the four contact and recovery value changes.
    pub(crate) async fn gated_change_with_code(
        &self,
        id: &AccountId,
        session: &domain::SessionId,
        (target, purpose): (&str, &str),
        command: impl FnOnce(String) -> domain::account::AccountCommand,
        context: &crate::context::CommandContext,
    ) -> Result<(), ServiceError> {
        // A precheck, so that a refused change spends no send.
        let now = self.now();
        let loaded = self
            .account_checked(id, |a| {
                a.id.is_some() && a.require_step_up(session, now).is_ok()
            })
            .await?;
        registered(loaded)?.require_step_up(session, now)?;
        self.admit_send(target, purpose, crate::limits::TargetLimit::CODES)
            .await?;
        let command = command(uuid::Uuid::new_v4().to_string());
        self.execute(id, command, context).await.map(drop)
    }
}

/// Parses an account id given as a login.
pub(crate) fn as_account_id(login: &str) -> Option<AccountId> {
    AccountId::parse(login.trim()).ok()
}
