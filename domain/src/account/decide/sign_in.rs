//! Sign-in outcomes: a password check (which may fail, count towards and start a lock) or a
//! passed SMS challenge. A sign-in from a client new to the account (the command layer looked
//! its recent sessions up) is recorded with a protection link for its new-sign-in notice.

use super::Decision;
use crate::account::{Account, AccountEvent, NewClient, SignInClient, VerificationMethod};
use crate::services::{DomainServices, PasswordCheck, SessionId};

impl Account {
    pub(super) fn decide_sign_in_with_password(
        &self,
        check: PasswordCheck,
        session_id: SessionId,
        new_client: Option<SignInClient>,
        services: &DomainServices,
    ) -> Decision {
        if let Some(failure) = self.check_password(check, services.clock.now())? {
            return Ok(failure);
        }
        // Checked after the password, so that only the password's holder learns of the freeze.
        self.require_not_frozen()?;
        Ok(vec![self.signed_in(
            VerificationMethod::Password,
            session_id,
            new_client,
            services,
        )])
    }

    pub(super) fn decide_sign_in_with_sms(
        &self,
        session_id: SessionId,
        new_client: Option<SignInClient>,
        services: &DomainServices,
    ) -> Vec<AccountEvent> {
        vec![self.signed_in(VerificationMethod::Sms, session_id, new_client, services)]
    }

    fn signed_in(
        &self,
        method: VerificationMethod,
        session_id: SessionId,
        new_client: Option<SignInClient>,
        services: &DomainServices,
    ) -> AccountEvent {
        AccountEvent::SignedIn {
            method,
            session_id,
            at: services.clock.now(),
            new_client: new_client.map(|client| NewClient {
                ip: client.ip,
                user_agent: client.user_agent,
                protection: self.protection_link(services),
            }),
        }
    }
}
