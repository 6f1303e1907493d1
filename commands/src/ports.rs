//! What the write side needs from elsewhere, as small traits the binary wires (DESIGN §1):
//! lookups that only a read model can answer, and the session store.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
pub use domain::PortError;

/// A boxed future, so the ports can be trait objects.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PortError>> + Send + 'a>>;

/// Accounts found through read models (eventually consistent, within seconds).
pub trait AccountDirectory: Send + Sync {
    /// Accounts whose verified recovery mobile or login mobile is `e164`.
    fn accounts_by_mobile<'a>(&'a self, e164: &'a str) -> PortFuture<'a, Vec<String>>;
    /// Accounts holding the assigned public IP `ip`.
    fn accounts_by_server_ip<'a>(&'a self, ip: &'a str) -> PortFuture<'a, Vec<String>>;
}

/// A new bearer session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub session_id: String,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The client it is opened from (shown in the person's list of sessions).
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Where sessions live (operational state).
pub trait SessionStore: Send + Sync {
    /// Stores `session` under `token` (hashed at rest by the store).
    fn create<'a>(&'a self, token: &'a str, session: &'a NewSession) -> PortFuture<'a, ()>;
    /// Revokes every session of `account_id` except `keep`.
    fn revoke_all<'a>(&'a self, account_id: &'a str, keep: Option<&'a str>) -> PortFuture<'a, ()>;
    /// Revokes one session.
    fn revoke<'a>(&'a self, session_id: &'a str) -> PortFuture<'a, ()>;
    /// Whether `account_id` had a session, revoked or not, from the client `ip` and
    /// `user_agent` (the same values; a missing value matches only a missing one) created or
    /// last used at or after `since`: a sign-in from a client without one is notified.
    fn seen_client<'a>(
        &'a self,
        account_id: &'a str,
        ip: Option<&'a str>,
        user_agent: Option<&'a str>,
        since: DateTime<Utc>,
    ) -> PortFuture<'a, bool>;
}

/// No read model: every lookup finds nothing (tests of the write side alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDirectory;

impl AccountDirectory for NoDirectory {
    fn accounts_by_mobile<'a>(&'a self, _: &'a str) -> PortFuture<'a, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn accounts_by_server_ip<'a>(&'a self, _: &'a str) -> PortFuture<'a, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// No session store: sign-ins fail (tests of the write side alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSessions;

impl SessionStore for NoSessions {
    fn create<'a>(&'a self, _: &'a str, _: &'a NewSession) -> PortFuture<'a, ()> {
        Box::pin(async { Err(PortError::msg("no session store is configured")) })
    }
    fn revoke_all<'a>(&'a self, _: &'a str, _: Option<&'a str>) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn revoke<'a>(&'a self, _: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn seen_client<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a str>,
        _: Option<&'a str>,
        _: DateTime<Utc>,
    ) -> PortFuture<'a, bool> {
        Box::pin(async { Err(PortError::msg("no session store is configured")) })
    }
}
