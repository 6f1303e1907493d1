//! The profile as it stood at an instant (`GET …/state?at=`, `accountd audit state`), replayed
//! from the account's events with the aggregate's own `apply` and `profile`: there is no
//! second implementation of the model here.
//!
//! An event belongs to the past of `at` when its `occurred_at` (the command's time, covered by
//! the chain hash) is at or before `at`. The replay is of the stream's prefix up to the first
//! event after `at`: events are appended in time order, and should a clock ever step back, a
//! later event is still not applied before an earlier one.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate as _;
use domain::account::{AccountEvent, Profile};
use domain::stored::from_payload;
use domain::values::AccountId;
use domain::Account;

use super::{occurred_at, Audit, AuditError, AuditLog, STREAM_PAGE};

impl<L: AuditLog> Audit<L> {
    /// The unmasked profile of `account` as it stood at `at`; `None` before it was registered.
    pub async fn state_at(
        &self,
        account: &AccountId,
        at: DateTime<Utc>,
    ) -> Result<Option<Profile>, AuditError> {
        let mut state = Account::default();
        let mut after = 0;
        'pages: loop {
            let page = self
                .log
                .stream(account.as_str(), after, STREAM_PAGE)
                .await
                .map_err(AuditError::Log)?;
            let full = page.len() == STREAM_PAGE as usize;
            for event in page {
                if occurred_at(&event) > at {
                    break 'pages;
                }
                after = event.sequence;
                let decoded: AccountEvent =
                    from_payload(&event.event_type, &event.event_version, event.payload).map_err(
                        |source| AuditError::Corrupt {
                            aggregate_id: event.aggregate_id.clone(),
                            sequence: event.sequence,
                            source,
                        },
                    )?;
                state.apply(decoded);
            }
            if !full {
                break;
            }
        }
        Ok(state.profile(at, self.reminder_after_days))
    }
}
