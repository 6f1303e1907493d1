//! Password reset from an emailed link. Requesting answers the same whether or not the email is
//! a login email (`admit_reset`, then `send_reset` after the answer). The link's token is looked
//! up by its SHA-256 in an index written in the same transaction as the event that issues it, so
//! it works the moment the email can leave; the account aggregate decides whether it is live.

use domain::account::{AccountCommand, VerificationMethod};
use domain::values::{AccountId, Email, VerificationCode};
use domain::{Account, Channel, DomainError, Secrets};
use uuid::Uuid;

use super::password::NewPassword;
use super::{masked_target, registered};
use crate::claims::ClaimKind;
use crate::context::CommandContext;
use crate::limits::TargetLimit;
use crate::service::{CommandService, ServiceError};

/// A way a reset can verify the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetMethod {
    pub method: VerificationMethod,
    pub masked_target: String,
}

impl CommandService {
    /// Counts a reset request against the email's limits.
    pub async fn admit_reset(&self, email: &Email) -> Result<(), ServiceError> {
        self.admit_send(email.as_str(), "reset", TargetLimit::CODES)
            .await
    }

    /// Issues a reset token when `email` is a login email; the notifier emails the link.
    pub async fn send_reset(
        &self,
        email: &Email,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let owner = self
            .store()
            .claim_owner(ClaimKind::LoginEmail, email.as_str())
            .await?
            .and_then(|o| AccountId::parse(&o).ok());
        let Some(id) = owner else {
            return Ok(());
        };
        let account = self.account(&id).await?.state;
        if account.login_email.as_ref() != Some(email) {
            return Ok(()); // a binding still pending: not a login email yet
        }
        // The executor indexes the token in the same transaction as its event.
        self.execute(&id, AccountCommand::IssueResetToken, context)
            .await?;
        Ok(())
    }

    /// The account whose live reset token is `token`.
    async fn reset_account(
        &self,
        token: &str,
    ) -> Result<(AccountId, std::sync::Arc<Account>), ServiceError> {
        let digest = self.keyring().token_digest(token);
        let id = (self.store().reset_token_owner(digest.as_hex()).await?)
            .and_then(|o| AccountId::parse(&o).ok())
            .ok_or(DomainError::ResetTokenInvalid)?;
        let account = registered(self.account(&id).await?)?;
        account.require_reset_token(&digest, self.now())?;
        Ok((id, account))
    }

    /// `GET /v1/password-resets/{token}`.
    pub async fn reset_methods(&self, token: &str) -> Result<Vec<ResetMethod>, ServiceError> {
        let (_, account) = self.reset_account(token).await?;
        Ok(account
            .reset_verification_methods()
            .into_iter()
            .filter_map(|method| {
                masked_target(&account, method).map(|masked_target| ResetMethod {
                    method,
                    masked_target,
                })
            })
            .collect())
    }

    /// `POST /v1/password-resets/{token}/verification-codes`: returns the masked target.
    pub async fn send_reset_code(
        &self,
        token: &str,
        method: VerificationMethod,
        context: &CommandContext,
    ) -> Result<String, ServiceError> {
        let (id, account) = self.reset_account(token).await?;
        let channel = match method {
            VerificationMethod::Sms => Channel::Sms,
            VerificationMethod::Email => Channel::Email,
            VerificationMethod::Password => {
                return Err(DomainError::VerificationMethodUnavailable("password").into())
            }
        };
        let target = account
            .step_up_target(method)?
            .ok_or(DomainError::VerificationMethodUnavailable("code target"))?;
        self.admit_send(&target, "reset", TargetLimit::CODES)
            .await?;
        let command = AccountCommand::SendResetCode {
            token_digest: self.keyring().token_digest(token),
            channel,
            code_id: Uuid::new_v4().to_string(),
        };
        self.execute(&id, command, context).await?;
        Ok(masked_target(&account, method).unwrap_or_default())
    }

    /// `POST /v1/password-resets/{token}/completion`. Every session of the account ends.
    pub async fn complete_reset(
        &self,
        token: &str,
        new: &str,
        confirmation: &str,
        code: Option<VerificationCode>,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let (id, _) = self.reset_account(token).await?;
        let password = self.check_new_password(NewPassword { new, confirmation })?;
        let token_digest = self.keyring().token_digest(token);
        self.retry_on_stale_check(|| async {
            let account = self.account(&id).await?.state;
            let reuse = self.reuse_check(&account, &password).await?;
            let new_hash = if reuse.reused {
                domain::PasswordHash::from_phc("") // refused before it is looked at
            } else {
                self.hasher().hash(&password).await?
            };
            let command = AccountCommand::CompleteReset {
                token_digest: token_digest.clone(),
                reuse,
                new_hash,
                code: code.clone(),
            };
            self.execute(&id, command, context).await
        })
        .await?;
        self.sessions()
            .revoke_all(id.as_str(), None)
            .await
            .map_err(ServiceError::Unavailable)
    }
}
