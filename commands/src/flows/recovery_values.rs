//! Recovery mobile and email: a change is requested after a step-up and a code goes to the new
//! value; nothing changes until the code confirms it.

use domain::account::AccountCommand;
use domain::values::{AccountId, Email, Mobile, VerificationCode};
use domain::{Channel, SessionId};

use crate::context::CommandContext;
use crate::service::{CommandService, ServiceError};

impl CommandService {
    /// `PUT /v1/me/recovery-mobile`.
    pub async fn request_recovery_mobile_change(
        &self,
        id: &AccountId,
        session: &SessionId,
        mobile: Mobile,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let target = mobile.as_str().to_owned();
        let command = |code_id| AccountCommand::RequestRecoveryMobileChange {
            session_id: session.clone(),
            mobile,
            code_id,
        };
        self.gated_change_with_code(id, session, (&target, "recovery"), command, context)
            .await
    }

    /// `PUT /v1/me/recovery-email`.
    pub async fn request_recovery_email_change(
        &self,
        id: &AccountId,
        session: &SessionId,
        email: Email,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let target = email.as_str().to_owned();
        let command = |code_id| AccountCommand::RequestRecoveryEmailChange {
            session_id: session.clone(),
            email,
            code_id,
        };
        self.gated_change_with_code(id, session, (&target, "recovery"), command, context)
            .await
    }

    /// `POST /v1/me/recovery-{mobile,email}/confirmation`.
    pub async fn confirm_recovery_change(
        &self,
        id: &AccountId,
        channel: Channel,
        code: VerificationCode,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let command = AccountCommand::ConfirmRecoveryChange { channel, code };
        self.execute(id, command, context).await.map(drop)
    }
}
