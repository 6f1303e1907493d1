//! Binding a login email: checked at the PUT (already bound, then step-up, then whether another
//! account has it), claimed at confirmation. A password is required when the account has none;
//! it is set at confirmation.

use domain::account::AccountCommand;
use domain::password::Password;
use domain::values::{AccountId, Email, VerificationCode};
use domain::{DomainError, SessionId};
use uuid::Uuid;

use super::registered;
use crate::claims::ClaimKind;
use crate::context::CommandContext;
use crate::limits::TargetLimit;
use crate::service::{CommandService, ServiceError};

impl CommandService {
    /// `PUT /v1/me/login-email`. `password` is the clear candidate, if the body had one.
    pub async fn request_login_email_binding(
        &self,
        id: &AccountId,
        session: &SessionId,
        email: Email,
        password: Option<&str>,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let account = registered(self.account(id).await?)?;
        account.precheck_login_email_binding(session, self.now())?;
        let owner = self
            .store()
            .claim_owner(ClaimKind::LoginEmail, email.as_str())
            .await?;
        if owner.is_some_and(|o| o != id.as_str()) {
            return Err(DomainError::Conflict.into());
        }
        let password_hash = match (password, &account.password) {
            (None, None) => return Err(DomainError::PasswordRequired.into()),
            (Some(_), Some(_)) => return Err(DomainError::PasswordAlreadySet.into()),
            (None, Some(_)) => None,
            (Some(candidate), None) => {
                let password =
                    Password::parse(candidate, self.policy()).map_err(DomainError::from)?;
                Some(self.hasher().hash(&password).await?)
            }
        };
        self.admit_send(email.as_str(), "login_email", TargetLimit::CODES)
            .await?;
        let command = AccountCommand::RequestLoginEmailBinding {
            session_id: session.clone(),
            email,
            password_hash,
            code_id: Uuid::new_v4().to_string(),
        };
        self.execute(id, command, context).await.map(drop)
    }

    /// `POST /v1/me/login-email/confirmation`: claims the email, then binds it.
    pub async fn confirm_login_email_binding(
        &self,
        id: &AccountId,
        code: VerificationCode,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let account = registered(self.account(id).await?)?;
        if account.login_email.is_some() {
            return Err(DomainError::LoginEmailAlreadyBound.into());
        }
        let email = account
            .pending_login_email
            .as_ref()
            .map(|p| p.email.clone())
            .ok_or(DomainError::CodeExpired)?;
        self.claim(ClaimKind::LoginEmail, email.as_str(), id.as_str())
            .await?;
        let command = AccountCommand::ConfirmLoginEmailBinding { code };
        match self.execute(id, command, context).await {
            Ok(_) => {
                self.store()
                    .hold(ClaimKind::LoginEmail, email.as_str(), id.as_str())
                    .await?;
                Ok(())
            }
            Err(e) => {
                self.store()
                    .release(ClaimKind::LoginEmail, email.as_str(), id.as_str())
                    .await?;
                Err(e)
            }
        }
    }
}
