//! Server public IPs reported by the compute service. An instance id is used once, ever; an IP
//! belongs to at most one account at a time (a claim, released when the server is).

use domain::account::AccountCommand;
use domain::values::{AccountId, ServerIp};
use domain::{AccountEvent, DomainError};

use super::registered;
use crate::claims::ClaimKind;
use crate::context::CommandContext;
use crate::service::{CommandService, ServiceError};

impl CommandService {
    /// `POST /internal/v1/accounts/{id}/servers`.
    pub async fn assign_server(
        &self,
        id: &AccountId,
        instance_id: &str,
        ip: ServerIp,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        registered(self.account(id).await?)?;
        self.claim(ClaimKind::InstanceId, instance_id, id.as_str())
            .await?;
        if let Err(e) = self
            .claim(ClaimKind::ServerIp, ip.as_str(), id.as_str())
            .await
        {
            self.store()
                .release(ClaimKind::InstanceId, instance_id, id.as_str())
                .await?;
            return Err(e);
        }
        let command = AccountCommand::AssignServerIp {
            instance_id: instance_id.to_owned(),
            ip: ip.clone(),
        };
        match self.execute(id, command, context).await {
            Ok(_) => {
                self.store()
                    .hold(ClaimKind::InstanceId, instance_id, id.as_str())
                    .await?;
                self.store()
                    .hold(ClaimKind::ServerIp, ip.as_str(), id.as_str())
                    .await?;
                Ok(())
            }
            Err(e) => {
                // An instance id the account already used stays claimed: it is never reused.
                if !matches!(e, ServiceError::Domain(DomainError::ServerInstanceTaken)) {
                    self.store()
                        .release(ClaimKind::InstanceId, instance_id, id.as_str())
                        .await?;
                }
                self.store()
                    .release(ClaimKind::ServerIp, ip.as_str(), id.as_str())
                    .await?;
                Err(e)
            }
        }
    }

    /// `DELETE /internal/v1/accounts/{id}/servers/{instance_id}`.
    pub async fn release_server(
        &self,
        id: &AccountId,
        instance_id: &str,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        registered(self.account(id).await?)?;
        let command = AccountCommand::ReleaseServerIp {
            instance_id: instance_id.to_owned(),
        };
        let committed = self.execute(id, command, context).await?;
        for event in &committed.events {
            if let AccountEvent::ServerIpReleased { public_ip, .. } = event {
                self.store()
                    .release(ClaimKind::ServerIp, public_ip.as_str(), id.as_str())
                    .await?;
            }
        }
        Ok(())
    }
}
