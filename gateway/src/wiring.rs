//! Where the write side and the read side meet: the write side's store serves as the read
//! side's event log, and the read store as the write side's directory and sessions. Each side
//! opens its own pool on the same database.

use domain::PortError;
use std::future::Future;

use commands::Store;
use domain::stored::{Checkpoint, RecordedEvent};
use projections::{EventLog, ReadStore};

/// The event log of the write side, as the read side's port.
#[derive(Clone, Debug)]
pub struct StoreLog(pub Store);

impl EventLog for StoreLog {
    fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send {
        let store = self.0.clone();
        async move {
            store
                .read_after(checkpoint, limit)
                .await
                .map_err(PortError::new)
        }
    }
}

/// The read models as the write side's account directory.
#[derive(Clone, Debug)]
pub struct ReadDirectory(pub ReadStore);

impl commands::ports::AccountDirectory for ReadDirectory {
    fn accounts_by_mobile<'a>(
        &'a self,
        e164: &'a str,
    ) -> commands::ports::PortFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.0
                .accounts_by_mobile(e164)
                .await
                .map_err(PortError::new)
        })
    }

    fn accounts_by_server_ip<'a>(
        &'a self,
        ip: &'a str,
    ) -> commands::ports::PortFuture<'a, Vec<String>> {
        Box::pin(async move {
            self.0
                .accounts_by_server_ip(ip)
                .await
                .map_err(PortError::new)
        })
    }
}

/// The read store's sessions as the write side's session store.
#[derive(Clone, Debug)]
pub struct ReadSessions(pub ReadStore);

impl commands::ports::SessionStore for ReadSessions {
    fn create<'a>(
        &'a self,
        token: &'a str,
        session: &'a commands::ports::NewSession,
    ) -> commands::ports::PortFuture<'a, ()> {
        Box::pin(async move {
            let session = projections::sessions::Session {
                session_id: session.session_id.clone(),
                account_id: session.account_id.clone(),
                created_at: session.created_at,
                expires_at: session.expires_at,
                last_used_at: Some(session.created_at),
                ip: session.ip.clone(),
                user_agent: session.user_agent.clone(),
            };
            self.0
                .create_session(token, &session)
                .await
                .map_err(PortError::new)
        })
    }

    fn revoke_all<'a>(
        &'a self,
        account_id: &'a str,
        keep: Option<&'a str>,
    ) -> commands::ports::PortFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .revoke_sessions_of(account_id, keep, chrono::Utc::now())
                .await
                .map_err(PortError::new)
        })
    }

    fn revoke<'a>(&'a self, session_id: &'a str) -> commands::ports::PortFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .revoke_session(session_id, chrono::Utc::now())
                .await
                .map_err(PortError::new)
        })
    }

    fn seen_client<'a>(
        &'a self,
        account_id: &'a str,
        ip: Option<&'a str>,
        user_agent: Option<&'a str>,
        since: chrono::DateTime<chrono::Utc>,
    ) -> commands::ports::PortFuture<'a, bool> {
        Box::pin(async move {
            self.0
                .seen_client(account_id, ip, user_agent, since)
                .await
                .map_err(PortError::new)
        })
    }
}

/// No audit module wired: the audit routes answer 503.
#[derive(Clone, Copy, Debug)]
pub struct NoAudit;

impl crate::http::internal::Audit for NoAudit {
    fn events<'a>(
        &'a self,
        _: &'a str,
        _: u64,
        _: u32,
    ) -> commands::ports::PortFuture<'a, serde_json::Value> {
        Box::pin(async { Err(PortError::msg("the audit module is not wired")) })
    }
    fn state<'a>(
        &'a self,
        _: &'a str,
        _: chrono::DateTime<chrono::Utc>,
    ) -> commands::ports::PortFuture<'a, Option<serde_json::Value>> {
        Box::pin(async { Err(PortError::msg("the audit module is not wired")) })
    }
    fn verification<'a>(
        &'a self,
        _: &'a str,
    ) -> commands::ports::PortFuture<'a, serde_json::Value> {
        Box::pin(async { Err(PortError::msg("the audit module is not wired")) })
    }
}

/// No bus wired: publishing fails (503) and readiness says so.
#[derive(Clone, Copy, Debug)]
pub struct NoBus;

impl crate::http::Notifications for NoBus {
    fn publish<'a>(
        &'a self,
        _: &'a str,
        _: u64,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> commands::ports::PortFuture<'a, ()> {
        Box::pin(async { Err(PortError::msg("no bus is wired")) })
    }
    fn ping(&self) -> commands::ports::PortFuture<'_, ()> {
        Box::pin(async { Err(PortError::msg("no bus is wired")) })
    }
}
