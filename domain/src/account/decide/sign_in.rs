//! Sign-in outcomes: a password check (which may fail, count towards and start a lock) or a
//! passed SMS challenge.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::account::{Account, AccountEvent, VerificationMethod};
use crate::services::{PasswordCheck, SessionId};

impl Account {
    pub(super) fn decide_sign_in_with_password(
        &self,
        check: PasswordCheck,
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> Decision {
        if let Some(failure) = self.check_password(check, now)? {
            return Ok(failure);
        }
        // Checked after the password, so that only the password's holder learns of the freeze.
        self.require_not_frozen()?;
        Ok(vec![AccountEvent::SignedIn {
            method: VerificationMethod::Password,
            session_id,
            at: now,
        }])
    }

    pub(super) fn decide_sign_in_with_sms(
        &self,
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> Vec<AccountEvent> {
        vec![AccountEvent::SignedIn {
            method: VerificationMethod::Sms,
            session_id,
            at: now,
        }]
    }
}
