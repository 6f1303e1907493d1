//! What the account records of a recovery: the information message handed to the notifier.

use crate::account::{Account, AccountEvent, AccountSummary};
use crate::values::Mobile;

impl Account {
    pub(super) fn decide_record_account_info_sent(
        &self,
        message_id: String,
        mobile: Mobile,
        accounts: Vec<AccountSummary>,
    ) -> Vec<AccountEvent> {
        vec![AccountEvent::AccountInfoSent {
            message_id,
            mobile,
            accounts,
        }]
    }

    /// This account's line in an account-information message.
    pub fn summary(&self) -> Option<AccountSummary> {
        Some(AccountSummary {
            account_id: self.id.clone()?,
            masked_login_email: self.login_email.as_ref().map(|e| e.masked()),
        })
    }
}
