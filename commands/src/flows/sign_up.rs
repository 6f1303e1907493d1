//! Sign-up by mobile: an SMS challenge proves the mobile, then the account is registered with it
//! as login, recovery and contact mobile. (Sign-up by email lives on `CommandService`.)
//!
//! Requesting a code answers the same whether or not it will be sent: the rate limit is counted
//! at once (`admit_sms_code`), and the lookup and the send happen afterwards (`send_sms_code`),
//! which the gateway runs after it answered.

use domain::account::AccountCommand;
use domain::challenge::ChallengeCommand;
use domain::values::{AccountId, Mobile, VerificationCode};
use domain::{Challenge, ChallengeEvent, CodePurpose, DomainError};
use uuid::Uuid;

use crate::claims::ClaimKind;
use crate::context::CommandContext;
use crate::limits::TargetLimit;
use crate::service::{CommandService, ServiceError};

/// What an SMS code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsPurpose {
    Signup,
    Login,
}

impl SmsPurpose {
    fn code_purpose(self) -> CodePurpose {
        match self {
            Self::Signup => CodePurpose::Signup,
            Self::Login => CodePurpose::Login,
        }
    }
}

/// An admitted SMS-code request: its id is answered at once.
#[derive(Debug, Clone)]
pub struct CodeTicket {
    pub code_id: String,
    pub mobile: Mobile,
    pub purpose: SmsPurpose,
}

impl CommandService {
    /// Counts the request against the mobile's limits and hands out the code id.
    pub async fn admit_sms_code(
        &self,
        mobile: Mobile,
        purpose: SmsPurpose,
    ) -> Result<CodeTicket, ServiceError> {
        self.admit_send(
            mobile.as_str(),
            purpose.code_purpose().as_str(),
            TargetLimit::CODES,
        )
        .await?;
        Ok(CodeTicket {
            code_id: Uuid::new_v4().to_string(),
            mobile,
            purpose,
        })
    }

    /// Sends the code when it can be used: a sign-up code to a mobile that is nobody's login
    /// mobile, a sign-in code to one that is.
    pub async fn send_sms_code(
        &self,
        ticket: CodeTicket,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let owner = self
            .store()
            .claim_owner(ClaimKind::LoginMobile, ticket.mobile.as_str())
            .await?;
        let usable = match ticket.purpose {
            SmsPurpose::Signup => owner.is_none(),
            SmsPurpose::Login => owner.is_some(),
        };
        if !usable {
            return Ok(());
        }
        let command = ChallengeCommand::Issue {
            challenge_id: ticket.code_id.clone(),
            mobile: ticket.mobile,
            purpose: ticket.purpose.code_purpose(),
        };
        self.executor()
            .execute::<Challenge>(&ticket.code_id, command, context)
            .await
            .map_err(ServiceError::from)?;
        Ok(())
    }

    /// Proves `mobile` with the challenge `code_id` for `purpose`.
    pub(crate) async fn pass_challenge(
        &self,
        mobile: &Mobile,
        purpose: SmsPurpose,
        code_id: &str,
        code: VerificationCode,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        if Uuid::parse_str(code_id).is_err() {
            return Err(DomainError::InvalidCode.into());
        }
        let code_purpose = purpose.code_purpose();
        let newest_request_at = self
            .store()
            .newest_send(mobile.as_str(), code_purpose.as_str())
            .await?;
        let command = ChallengeCommand::Pass {
            mobile: mobile.clone(),
            purpose: code_purpose,
            code,
            newest_request_at,
        };
        let committed = self
            .executor()
            .execute::<Challenge>(code_id, command, context)
            .await
            .map_err(ServiceError::from)?;
        match ChallengeEvent::rejection(&committed.events) {
            Some(refusal) => Err(refusal.into()),
            None => Ok(()),
        }
    }

    /// Sign-up by a mobile proved with the code of challenge `code_id`.
    pub async fn sign_up_with_mobile(
        &self,
        mobile: Mobile,
        code_id: &str,
        code: VerificationCode,
        context: &CommandContext,
    ) -> Result<AccountId, ServiceError> {
        self.pass_challenge(&mobile, SmsPurpose::Signup, code_id, code, context)
            .await?;
        let account_id = AccountId::from_number(self.store().next_account_number().await?)
            .map_err(DomainError::from)?;
        self.claim(ClaimKind::LoginMobile, mobile.as_str(), account_id.as_str())
            .await?;
        let command = AccountCommand::RegisterWithMobile {
            account_id: account_id.clone(),
            mobile: mobile.clone(),
        };
        match self.execute(&account_id, command, context).await {
            Ok(_) => {
                self.store()
                    .hold(ClaimKind::LoginMobile, mobile.as_str(), account_id.as_str())
                    .await?;
                Ok(account_id)
            }
            Err(e) => {
                self.store()
                    .release(ClaimKind::LoginMobile, mobile.as_str(), account_id.as_str())
                    .await?;
                Err(e)
            }
        }
    }
}
