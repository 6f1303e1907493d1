//! Contact mobile and email: changed at once after a step-up, unverified, with a code sent to
//! the new value; verified by that code.

use domain::account::AccountCommand;
use domain::values::{AccountId, Email, Mobile, VerificationCode};
use domain::{Channel, SessionId};

use crate::context::CommandContext;
use crate::service::{CommandService, ServiceError};

impl CommandService {
    /// `PUT /v1/me/contact-mobile`.
    pub async fn change_contact_mobile(
        &self,
        id: &AccountId,
        session: &SessionId,
        mobile: Mobile,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let target = mobile.as_str().to_owned();
        let command = |code_id| AccountCommand::ChangeContactMobile {
            session_id: session.clone(),
            mobile,
            code_id,
        };
        self.gated_change_with_code(id, session, (&target, "contact"), command, context)
            .await
    }

    /// `PUT /v1/me/contact-email`.
    pub async fn change_contact_email(
        &self,
        id: &AccountId,
        session: &SessionId,
        email: Email,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let target = email.as_str().to_owned();
        let command = |code_id| AccountCommand::ChangeContactEmail {
            session_id: session.clone(),
            email,
            code_id,
        };
        self.gated_change_with_code(id, session, (&target, "contact"), command, context)
            .await
    }

    /// `POST /v1/me/contact-{mobile,email}/verification`.
    pub async fn verify_contact(
        &self,
        id: &AccountId,
        channel: Channel,
        code: VerificationCode,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let command = AccountCommand::VerifyContact { channel, code };
        self.execute(id, command, context).await.map(drop)
    }
}
