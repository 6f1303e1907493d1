//! One account's history, paged by sequence (`GET /internal/v1/audit/accounts/{id}/events`,
//! `GET /v1/me/history`, `accountd audit history`).

use domain::values::AccountId;
use serde::{Deserialize, Serialize};

use super::{Audit, AuditError, AuditEvent, AuditLog};

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page size.
pub const MAX_LIMIT: u32 = 1_000;

/// One page of a history: `{"events": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub events: Vec<AuditEvent>,
}

impl<L: AuditLog> Audit<L> {
    /// Up to `limit` (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]) events of `account`
    /// after sequence `after` (exclusive), redacted. `None` when the account has no events at
    /// all (it does not exist); an empty page past its last event otherwise.
    pub async fn history(
        &self,
        account: &AccountId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Option<History>, AuditError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AuditError::InvalidLimit(limit));
        }
        let page = self
            .log
            .stream(account.as_str(), after, limit)
            .await
            .map_err(AuditError::Log)?;
        if page.is_empty() && !self.exists(account).await? {
            return Ok(None);
        }
        Ok(Some(History {
            events: page.into_iter().map(AuditEvent::from_recorded).collect(),
        }))
    }

    /// Whether `account` has at least one event.
    async fn exists(&self, account: &AccountId) -> Result<bool, AuditError> {
        let first = self
            .log
            .stream(account.as_str(), 0, 1)
            .await
            .map_err(AuditError::Log)?;
        Ok(!first.is_empty())
    }
}
