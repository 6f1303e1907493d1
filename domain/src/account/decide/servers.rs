//! Public IPs of the account's servers, as the compute service reports them. Uniqueness of an
//! IP across accounts is a claim of the command layer; within the account it is checked here.

use chrono::{DateTime, Utc};

use super::Decision;
use crate::account::{Account, AccountEvent};
use crate::error::DomainError;
use crate::values::ServerIp;

impl Account {
    pub(super) fn decide_assign_server_ip(
        &self,
        instance_id: String,
        ip: ServerIp,
        now: DateTime<Utc>,
    ) -> Decision {
        if self.used_instance_ids.contains(&instance_id) {
            return Err(DomainError::ServerInstanceTaken);
        }
        if self.servers.iter().any(|s| s.public_ip == ip) {
            return Err(DomainError::Conflict);
        }
        Ok(vec![AccountEvent::ServerIpAssigned {
            instance_id,
            public_ip: ip,
            assigned_at: now,
        }])
    }

    pub(super) fn decide_release_server_ip(
        &self,
        instance_id: &str,
        now: DateTime<Utc>,
    ) -> Decision {
        let server = self
            .servers
            .iter()
            .find(|s| s.instance_id == instance_id)
            .ok_or(DomainError::ServerNotFound)?;
        Ok(vec![AccountEvent::ServerIpReleased {
            instance_id: server.instance_id.clone(),
            public_ip: server.public_ip.clone(),
            released_at: now,
        }])
    }
}
