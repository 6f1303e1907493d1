//! Finding an account again.
//!
//! - By mobile: answered the same whatever the mobile is (`admit_recovery_by_mobile` counts
//!   the request; `send_account_info` does the lookup and the send after the answer). The
//!   account information goes to the mobile only when it is a verified recovery or login mobile
//!   of some account, at most ten times a day.
//! - By account id or server IP: a masked mobile, or a decoy of the same shape, stable for the
//!   input, when the input reaches no account with a verified recovery mobile. Confirming with
//!   the full number sends the account information; a decoy never sends anything.
//!
//! Timing must not tell a real recovery from a decoy (issue 13, finding 7): before the answer
//! both do the same work (one account read, one recovery stream written); what only a real one
//! does (recording the request on the account, confirming, sending) is left for after the answer
//! ([`CommandService::record_recovery_request`], `confirm_recovery` run by the gateway once it
//! has answered).

use domain::account::{AccountCommand, RecoveryMethod};
use domain::recovery::RecoveryCommand;
use domain::values::{AccountId, Mobile, ServerIp};
use domain::{DomainError, Recovery, RecoveryEvent};
use uuid::Uuid;

use crate::context::CommandContext;
use crate::limits::TargetLimit;
use crate::service::{CommandService, ServiceError};

/// An admitted recovery by mobile.
#[derive(Debug, Clone)]
pub struct RecoveryTicket {
    pub mobile: Mobile,
}

/// A started recovery by account id or server IP.
#[derive(Debug, Clone)]
pub struct RecoveryStarted {
    pub recovery_id: String,
    pub masked_mobile: String,
    /// The account it reached, if any: recorded on that account after the answer.
    reached: Option<(AccountId, RecoveryMethod)>,
}

/// Stands in for "no account" where a lookup must cost what a real one does: the last 12-digit
/// number, which the never-reusing sequence would reach after 900 billion sign-ups.
const DECOY_ACCOUNT: u64 = AccountId::LAST;

impl CommandService {
    /// Counts nothing yet (the daily cap is counted only when a message is really sent) but
    /// gives the flow one shape; the gateway answers 202 right after.
    pub fn admit_recovery_by_mobile(&self, mobile: Mobile) -> RecoveryTicket {
        RecoveryTicket { mobile }
    }

    /// Sends the account information for every account `mobile` serves, if any.
    pub async fn send_account_info(
        &self,
        ticket: RecoveryTicket,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let ids = self
            .directory()
            .accounts_by_mobile(ticket.mobile.as_str())
            .await
            .map_err(ServiceError::Unavailable)?;
        let ids: Vec<AccountId> = ids
            .iter()
            .filter_map(|id| AccountId::parse(id).ok())
            .collect();
        for id in &ids {
            let command = AccountCommand::RecordRecoveryRequest {
                method: RecoveryMethod::Mobile,
                recovery_id: None,
            };
            self.execute(id, command, context).await?;
        }
        self.record_account_info(&ticket.mobile, &ids, context)
            .await
    }

    /// Hands the account information for `ids` to the notifier (as an event of the first
    /// account), within the mobile's daily cap.
    async fn record_account_info(
        &self,
        mobile: &Mobile,
        ids: &[AccountId],
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let Some(first) = ids.first() else {
            return Ok(());
        };
        match self
            .admit_send(mobile.as_str(), "account_info", TargetLimit::ACCOUNT_INFO)
            .await
        {
            Err(ServiceError::RateLimited(_)) => return Ok(()), // over the cap: nothing is sent
            other => other?,
        }
        let mut accounts = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(summary) = self.account(id).await?.state.summary() {
                accounts.push(summary);
            }
        }
        let command = AccountCommand::RecordAccountInfoSent {
            message_id: Uuid::new_v4().to_string(),
            mobile: mobile.clone(),
            accounts,
        };
        self.execute(first, command, context).await.map(drop)
    }

    /// Recovery by account id.
    pub async fn recover_by_account_id(
        &self,
        account_id: &AccountId,
        context: &CommandContext,
    ) -> Result<RecoveryStarted, ServiceError> {
        let account = self.account(account_id).await?.state;
        let reached = account.id.clone().zip(account.recovery_mobile.clone());
        self.start_recovery(
            RecoveryMethod::AccountId,
            account_id.as_str(),
            reached,
            context,
        )
        .await
    }

    /// Recovery by a server's public IP (assigned, not released).
    pub async fn recover_by_server_ip(
        &self,
        ip: &ServerIp,
        context: &CommandContext,
    ) -> Result<RecoveryStarted, ServiceError> {
        let ids = self
            .directory()
            .accounts_by_server_ip(ip.as_str())
            .await
            .map_err(ServiceError::Unavailable)?;
        let found = ids.first().and_then(|id| AccountId::parse(id).ok());
        // An IP nobody holds reads an account that does not exist, so both cost one read.
        let id = match found {
            Some(id) => id,
            None => AccountId::from_number(DECOY_ACCOUNT).map_err(DomainError::from)?,
        };
        let account = self.account(&id).await?.state;
        // The read model may lag a release by a moment: the account's own state decides.
        let reached = account
            .servers
            .iter()
            .any(|s| &s.public_ip == ip)
            .then(|| account.recovery_mobile.clone().map(|m| (id, m)))
            .flatten();
        self.start_recovery(RecoveryMethod::ServerIp, ip.as_str(), reached, context)
            .await
    }

    async fn start_recovery(
        &self,
        method: RecoveryMethod,
        input: &str,
        reached: Option<(AccountId, Mobile)>,
        context: &CommandContext,
    ) -> Result<RecoveryStarted, ServiceError> {
        let masked_mobile = match &reached {
            Some((_, mobile)) => mobile.masked(),
            None => {
                let seed = self
                    .keyring()
                    .keyed_hash("recovery-decoy", format!("{method:?}\0{input}").as_bytes());
                Mobile::decoy_masked(&seed)
            }
        };
        let recovery_id = Uuid::new_v4().to_string();
        let command = RecoveryCommand::Start {
            recovery_id: recovery_id.clone(),
            method,
            account: reached.clone(),
            masked_mobile: masked_mobile.clone(),
        };
        self.executor()
            .execute::<Recovery>(&recovery_id, command, context)
            .await
            .map_err(ServiceError::from)?;
        Ok(RecoveryStarted {
            recovery_id,
            masked_mobile,
            reached: reached.map(|(id, _)| (id, method)),
        })
    }

    /// Records a started recovery on the account it reached (nothing for a decoy). Run after
    /// the answer, so that a real recovery answers as fast as a decoy.
    pub async fn record_recovery_request(
        &self,
        started: RecoveryStarted,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        let Some((id, method)) = started.reached else {
            return Ok(());
        };
        let command = AccountCommand::RecordRecoveryRequest {
            method,
            recovery_id: Some(started.recovery_id),
        };
        self.execute(&id, command, context).await.map(drop)
    }

    /// `POST /v1/account-recovery/{id}/confirmation`: answered 202 whatever happens; sends the
    /// account information when the full number matches.
    pub async fn confirm_recovery(
        &self,
        recovery_id: &str,
        mobile: Mobile,
        context: &CommandContext,
    ) -> Result<(), ServiceError> {
        if Uuid::parse_str(recovery_id).is_err() {
            return Ok(());
        }
        let command = RecoveryCommand::Confirm {
            mobile: mobile.clone(),
        };
        let committed = match self
            .executor()
            .execute::<Recovery>(recovery_id, command, context)
            .await
        {
            Ok(committed) => committed,
            Err(crate::CommandError::Domain(DomainError::RecoveryClosed)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        for event in committed.events {
            match event {
                RecoveryEvent::RecoveryConfirmed { account_id, mobile } => {
                    let mut ids = self
                        .directory()
                        .accounts_by_mobile(mobile.as_str())
                        .await
                        .map_err(ServiceError::Unavailable)?
                        .iter()
                        .filter_map(|id| AccountId::parse(id).ok())
                        .collect::<Vec<_>>();
                    ids.retain(|id| id != &account_id);
                    ids.insert(0, account_id);
                    self.record_account_info(&mobile, &ids, context).await?;
                }
                RecoveryEvent::RecoveryConfirmationFailed { .. } => {
                    if let Some(account_id) = committed.state.account_id.clone() {
                        let command = AccountCommand::RecordRecoveryConfirmationFailure {
                            recovery_id: recovery_id.to_owned(),
                        };
                        self.execute(&account_id, command, context).await?;
                    }
                }
                RecoveryEvent::RecoveryStarted { .. } => {}
            }
        }
        Ok(())
    }
}
