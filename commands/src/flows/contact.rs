//! Contact mobile and email: changed at once after a step-up, unverified, with a code sent to
//! the new value; verified by that code.

use domain::account::AccountCommand;
use domain::values::{AccountId, Email, Mobile, VerificationCode};
use domain::{Channel, SessionId};
use uuid::Uuid;

use super::registered;
use crate::context::CommandContext;
use crate::limits::TargetLimit;
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
        registered(self.account(id).await?)?.require_step_up(session, self.now())?;
        self.admit_send(mobile.as_str(), "contact", TargetLimit::CODES)
            .await?;
        let command = AccountCommand::ChangeContactMobile {
            session_id: session.clone(),
            mobile,
            code_id: Uuid::new_v4().to_string(),
        };
        self.execute(id, command, context).await.map(drop)
    }

    /// `PUT /v1/me/contact-email`.
    pub async fn change_contact_email(
        &self,
        id: &AccountId,
        session: &SessionId,
        email: Email,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        registered(self.account(id).await?)?.require_step_up(session, self.now())?;
        self.admit_send(email.as_str(), "contact", TargetLimit::CODES)
            .await?;
        let command = AccountCommand::ChangeContactEmail {
            session_id: session.clone(),
            email,
            code_id: Uuid::new_v4().to_string(),
        };
        self.execute(id, command, context).await.map(drop)
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
