//! "This wasn't me": `POST /v1/account-protection/{token}` (docs/adr/0009). Anonymous: the token
//! names its account (`<account id>.<random>`), and only that account's state can tell whether
//! it is live, so nothing is indexed after the change commits and a crash cannot lose a link.
//!
//! Sessions are operational state beside the events, so they cannot end in the command's
//! transaction. They are revoked once the token is known to be live (never for a forged one),
//! before the freeze commits (a crash in between leaves the link usable for a retry), and again
//! after it (a password sign-in that slipped in between ends too; after the commit none can).

use domain::account::protection::protection_token_account;
use domain::account::{AccountCommand, AccountEvent, ProtectedChange};
use domain::values::AccountId;
use domain::{DomainError, Secrets};

use super::registered;
use crate::claims::ClaimKind;
use crate::context::CommandContext;
use crate::service::{CommandService, ServiceError};

/// What following a link did, for the confirmation page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secured {
    pub account_id: AccountId,
    /// The change the link's notice was about.
    pub change: ProtectedChange,
    /// Whether that change was undone (it still stood).
    pub reverted: bool,
}

impl CommandService {
    /// Freezes the account a protection link belongs to and reverts the link's change.
    pub async fn secure_account(
        &self,
        token: &str,
        context: &CommandContext,
    ) -> Result<Secured, ServiceError> {
        let id = protection_token_account(token).ok_or(DomainError::ProtectionTokenInvalid)?;
        let digest = self.keyring().token_digest(token);
        let account = match self.account(&id).await.map(registered) {
            Ok(Ok(account)) => account,
            // An unknown account answers like an unknown token.
            Ok(Err(_)) => return Err(DomainError::ProtectionTokenInvalid.into()),
            Err(e) => return Err(e.into()),
        };
        account.protection(&digest, self.now())?;
        self.revoke_sessions(&id).await?;
        let committed = self
            .execute(
                &id,
                AccountCommand::FreezeAccount {
                    token_digest: digest,
                },
                context,
            )
            .await?;
        self.revoke_sessions(&id).await?;
        let mut secured = None;
        let mut reverted = false;
        for event in &committed.events {
            match event {
                AccountEvent::AccountFrozen { change, .. } => secured = Some(change.clone()),
                AccountEvent::ChangeReverted { change, .. } => {
                    reverted = true;
                    if let ProtectedChange::LoginEmail { email } = change {
                        // Unbound: the email may be bound again, by this account or another.
                        self.store()
                            .release(ClaimKind::LoginEmail, email.as_str(), id.as_str())
                            .await?;
                    }
                }
                _ => {}
            }
        }
        let change = secured.ok_or(DomainError::ProtectionTokenInvalid)?;
        Ok(Secured {
            account_id: id,
            change,
            reverted,
        })
    }

    async fn revoke_sessions(&self, id: &AccountId) -> Result<(), ServiceError> {
        self.sessions()
            .revoke_all(id.as_str(), None)
            .await
            .map_err(ServiceError::Unavailable)
    }
}
