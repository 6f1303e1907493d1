//! Changing the password (SPEC order: step-up → login email → body → current → reuse); every
//! other session of the account is revoked before the answer.

use domain::account::AccountCommand;
use domain::password::Password;
use domain::values::AccountId;
use domain::{Account, DomainError, PasswordHash, ReuseCheck, SessionId};

use super::registered;
use crate::context::CommandContext;
use crate::hasher::Overloaded;
use crate::service::{CommandService, ServiceError};

/// A new password and its confirmation, as typed.
#[derive(Clone, Copy)]
pub(crate) struct NewPassword<'a> {
    pub new: &'a str,
    pub confirmation: &'a str,
}

impl CommandService {
    /// Checks a new password's policy and confirmation (the body checks).
    pub(crate) fn check_new_password(
        &self,
        new: NewPassword<'_>,
    ) -> Result<Password, ServiceError> {
        let password = Password::parse(new.new, self.policy()).map_err(DomainError::from)?;
        if new.new != new.confirmation {
            return Err(DomainError::PasswordMismatch.into());
        }
        Ok(password)
    }

    /// Whether `candidate` is one of the account's last passwords (all of them checked).
    pub(crate) async fn reuse_check(
        &self,
        account: &Account,
        candidate: &Password,
    ) -> Result<ReuseCheck, Overloaded> {
        let hashes = account
            .recent_password_hashes(self.policy().history_depth)
            .cloned()
            .collect();
        Ok(ReuseCheck {
            against_version: account.password_version(),
            reused: self
                .hasher()
                .matches_any(candidate.expose_secret(), hashes)
                .await?,
        })
    }

    /// `PUT /v1/me/password`.
    pub async fn change_password(
        &self,
        id: &AccountId,
        session: &SessionId,
        current: &str,
        new: &str,
        confirmation: &str,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let account = registered(self.account(id).await?)?;
        account.precheck_password_change(session, self.now())?;
        let password = self.check_new_password(NewPassword { new, confirmation })?;
        if let Some(until) = account.locked_until(self.now()) {
            return Err(DomainError::Locked { until }.into());
        }
        self.retry_on_stale_check(|| async {
            let account = self.account(id).await?.state;
            let current = self.check_password(&account, current).await?;
            let reuse = if current.matches {
                self.reuse_check(&account, &password).await?
            } else {
                // The current password is wrong: that answer comes first, reuse is not checked.
                ReuseCheck {
                    against_version: account.password_version(),
                    reused: false,
                }
            };
            let new_hash = if current.matches && !reuse.reused {
                self.hasher().hash(&password).await?
            } else {
                // Never stored: the aggregate refuses a wrong current password or a reused one
                // before it looks at the new hash, so no Argon2 work is spent on it.
                PasswordHash::from_phc("")
            };
            let command = AccountCommand::ChangePassword {
                session_id: session.clone(),
                current,
                reuse,
                new_hash,
            };
            self.execute(id, command, context).await
        })
        .await?;
        self.sessions()
            .revoke_all(id.as_str(), Some(session.as_str()))
            .await
            .map_err(ServiceError::Unavailable)
    }
}
