//! Sign-up by email (a code to the new contact email) and by a proved mobile.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::account::{Account, AccountEvent, Verifiable};
use crate::codes::CodePurpose;
use crate::error::DomainError;
use crate::services::{DomainServices, PasswordHash};
use crate::values::{AccountId, Email, Mobile};
use crate::Channel;

impl Account {
    pub(super) fn decide_register_with_email(
        &self,
        account_id: AccountId,
        login_email: Email,
        password_hash: PasswordHash,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        if self.id.is_some() {
            return Err(DomainError::AccountAlreadyExists);
        }
        let code = self.issue_code(
            &account_id,
            CodePurpose::Contact,
            Channel::Email,
            login_email.as_str(),
            code_id,
            None,
            services,
        );
        Ok(vec![
            AccountEvent::AccountRegistered {
                account_id,
                login_email: Some(login_email.clone()),
                login_mobile: None,
                contact_mobile: None,
                contact_email: Some(Verifiable {
                    value: login_email,
                    verified: false,
                }),
                recovery_mobile: None,
                password_hash: Some(password_hash),
                registered_at: services.clock.now(),
            },
            code,
        ])
    }

    pub(super) fn decide_register_with_mobile(
        &self,
        account_id: AccountId,
        mobile: Mobile,
        now: DateTime<Utc>,
    ) -> Decision {
        if self.id.is_some() {
            return Err(DomainError::AccountAlreadyExists);
        }
        Ok(vec![AccountEvent::AccountRegistered {
            account_id,
            login_email: None,
            login_mobile: Some(mobile.clone()),
            contact_mobile: Some(Verifiable {
                value: mobile.clone(),
                verified: true,
            }),
            contact_email: None,
            recovery_mobile: Some(mobile),
            password_hash: None,
            registered_at: now,
        }])
    }
}
