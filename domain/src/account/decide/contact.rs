//! Contact mobile and email: changed at once (unverified) after a step-up, a code sent to the
//! new value, verified by that code.

use super::Decision;
use crate::account::{Account, AccountEvent, Verifiable};
use crate::codes::{CodePurpose, CodeSlot};
use crate::error::DomainError;
use crate::services::{DomainServices, SessionId};
use crate::values::{Email, Mobile, VerificationCode};
use crate::Channel;

impl Account {
    pub(super) fn decide_change_contact_mobile(
        &self,
        session: &SessionId,
        mobile: Mobile,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        self.require_step_up(session, services.clock.now())?;
        let previous = self.contact_mobile.as_ref();
        let mut events = Vec::with_capacity(2);
        match previous {
            Some(Verifiable { value, verified }) if *value == mobile => {
                if *verified {
                    return Err(DomainError::AlreadyCurrent);
                }
                // Same unverified value: only a fresh code.
            }
            _ => events.push(AccountEvent::ContactMobileChanged {
                previous: previous.map(|p| p.value.clone()),
                mobile: mobile.clone(),
                protection: Some(self.protection_link(services)),
            }),
        }
        events.push(self.issue_code(
            self.owner(),
            CodePurpose::Contact,
            Channel::Sms,
            mobile.as_str(),
            code_id,
            None,
            services,
        ));
        Ok(events)
    }

    pub(super) fn decide_change_contact_email(
        &self,
        session: &SessionId,
        email: Email,
        code_id: String,
        services: &DomainServices,
    ) -> Decision {
        self.require_step_up(session, services.clock.now())?;
        let previous = self.contact_email.as_ref();
        let mut events = Vec::with_capacity(2);
        match previous {
            Some(Verifiable { value, verified }) if *value == email => {
                if *verified {
                    return Err(DomainError::AlreadyCurrent);
                }
            }
            _ => events.push(AccountEvent::ContactEmailChanged {
                previous: previous.map(|p| p.value.clone()),
                email: email.clone(),
                protection: Some(self.protection_link(services)),
            }),
        }
        events.push(self.issue_code(
            self.owner(),
            CodePurpose::Contact,
            Channel::Email,
            email.as_str(),
            code_id,
            None,
            services,
        ));
        Ok(events)
    }

    pub(super) fn decide_verify_contact(
        &self,
        channel: Channel,
        code: VerificationCode,
        services: &DomainServices,
    ) -> Decision {
        let current = match channel {
            Channel::Sms => self
                .contact_mobile
                .as_ref()
                .map(|c| (c.value.as_str().to_owned(), c.verified)),
            Channel::Email => self
                .contact_email
                .as_ref()
                .map(|c| (c.value.as_str().to_owned(), c.verified)),
        };
        let Some((target, false)) = current else {
            // Nothing to verify: no value, or already verified.
            return Err(DomainError::CodeExpired);
        };
        let slot = CodeSlot::new(CodePurpose::Contact, channel);
        if let Some(failure) = self.check_code(slot, Some(&target), None, None, &code, services)? {
            return Ok(vec![failure]);
        }
        Ok(vec![match channel {
            Channel::Sms => AccountEvent::ContactMobileVerified {
                mobile: self
                    .contact_mobile
                    .as_ref()
                    .map(|c| c.value.clone())
                    .expect("checked above: the contact mobile is set"),
            },
            Channel::Email => AccountEvent::ContactEmailVerified {
                email: self
                    .contact_email
                    .as_ref()
                    .map(|c| c.value.clone())
                    .expect("checked above: the contact email is set"),
            },
        }])
    }
}
