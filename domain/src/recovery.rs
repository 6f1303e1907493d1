//! An account recovery by account ID or server IP, keyed by its own id. It shows a masked
//! mobile (a decoy when the input reaches no account with a verified recovery mobile), and
//! sends the account information when the full number comes back: five tries, fifteen minutes,
//! closed once confirmed. A decoy is never confirmed and never sends anything.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::account::RecoveryMethod;
use crate::error::DomainError;
use crate::rules::{RECOVERY_MAX_TRIES, RECOVERY_TTL};
use crate::services::DomainServices;
use crate::values::{AccountId, Mobile};

/// The aggregate type stored in every row: never rename it.
pub const RECOVERY_AGGREGATE_TYPE: &str = "Recovery";

#[derive(Debug, Clone)]
pub enum RecoveryCommand {
    Start {
        recovery_id: String,
        method: RecoveryMethod,
        /// The account reached and its verified recovery mobile; `None` for a decoy.
        account: Option<(AccountId, Mobile)>,
        masked_mobile: String,
    },
    Confirm {
        mobile: Mobile,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RecoveryEvent {
    RecoveryStarted {
        recovery_id: String,
        method: RecoveryMethod,
        account_id: Option<AccountId>,
        mobile: Option<Mobile>,
        masked_mobile: String,
        expires_at: DateTime<Utc>,
    },
    RecoveryConfirmationFailed {
        tries: u8,
    },
    RecoveryConfirmed {
        account_id: AccountId,
        mobile: Mobile,
    },
}

impl RecoveryEvent {
    pub const TYPES: [&'static str; 3] = [
        "RecoveryStarted",
        "RecoveryConfirmationFailed",
        "RecoveryConfirmed",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RecoveryStarted { .. } => "RecoveryStarted",
            Self::RecoveryConfirmationFailed { .. } => "RecoveryConfirmationFailed",
            Self::RecoveryConfirmed { .. } => "RecoveryConfirmed",
        }
    }
}

impl DomainEvent for RecoveryEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub id: Option<String>,
    pub account_id: Option<AccountId>,
    pub mobile: Option<Mobile>,
    pub masked_mobile: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub tries: u8,
    pub confirmed: bool,
}

impl Recovery {
    /// Whether a confirmation may still be tried at `now`.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.id.is_some()
            && !self.confirmed
            && self.tries < RECOVERY_MAX_TRIES
            && self.expires_at.is_some_and(|t| now < t)
    }

    fn decide(
        &self,
        command: RecoveryCommand,
        services: &DomainServices,
    ) -> Result<Vec<RecoveryEvent>, DomainError> {
        let now = services.clock.now();
        match command {
            RecoveryCommand::Start {
                recovery_id,
                method,
                account,
                masked_mobile,
            } => {
                if self.id.is_some() {
                    return Err(DomainError::Conflict);
                }
                let (account_id, mobile) = account.unzip();
                Ok(vec![RecoveryEvent::RecoveryStarted {
                    recovery_id,
                    method,
                    account_id,
                    mobile,
                    masked_mobile,
                    expires_at: now + RECOVERY_TTL,
                }])
            }
            RecoveryCommand::Confirm { mobile } => {
                if !self.is_open(now) {
                    return Err(DomainError::RecoveryClosed);
                }
                match (&self.account_id, &self.mobile) {
                    (Some(account_id), Some(expected)) if *expected == mobile => {
                        Ok(vec![RecoveryEvent::RecoveryConfirmed {
                            account_id: account_id.clone(),
                            mobile,
                        }])
                    }
                    _ => Ok(vec![RecoveryEvent::RecoveryConfirmationFailed {
                        tries: self.tries + 1,
                    }]),
                }
            }
        }
    }
}

impl Aggregate for Recovery {
    const TYPE: &'static str = RECOVERY_AGGREGATE_TYPE;
    type Command = RecoveryCommand;
    type Event = RecoveryEvent;
    type Error = DomainError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            RecoveryEvent::RecoveryStarted {
                recovery_id,
                account_id,
                mobile,
                masked_mobile,
                expires_at,
                method: _,
            } => {
                self.id = Some(recovery_id);
                self.account_id = account_id;
                self.mobile = mobile;
                self.masked_mobile = Some(masked_mobile);
                self.expires_at = Some(expires_at);
            }
            RecoveryEvent::RecoveryConfirmationFailed { tries } => self.tries = tries,
            RecoveryEvent::RecoveryConfirmed { .. } => self.confirmed = true,
        }
    }
}
