//! Values that belong to at most one account (DESIGN §3.6). Uniqueness cannot come from a
//! projection, so a value is claimed in the store before the command that takes it runs:
//!
//! 1. `claim` inserts a `pending` row; of concurrent claimants exactly one inserts it, the
//!    others see another owner and get [`ClaimError::Taken`];
//! 2. the command runs; on success `hold` marks the row `held`, on failure `release` deletes it;
//! 3. a process that died between 1 and 2 leaves a stale `pending` row. A later claimant takes
//!    it over only when the owner's state does not hold the value as that kind (its command
//!    never committed); otherwise the row is marked `held` and the claimant is refused. Reading
//!    the owner's state is the command layer's part (`CommandService::claim`).

use std::time::Duration;

use async_trait::async_trait;

use crate::store::{Store, StoreError};

/// What kind of value is claimed. Persisted: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    LoginEmail,
    LoginMobile,
    ServerIp,
    InstanceId,
}

impl ClaimKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginEmail => "login_email",
            Self::LoginMobile => "login_mobile",
            Self::ServerIp => "server_ip",
            Self::InstanceId => "instance_id",
        }
    }
}

/// How long a `pending` claim may stay before a claimant checks whether its command died.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// The claim on a value, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    pub owner: String,
    /// Its command committed.
    pub held: bool,
    /// Pending for longer than the staleness bound asked for.
    pub stale: bool,
}

/// The claims table: each statement on its own; the protocol above is [`Store`]'s.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Inserts a `pending` claim; `false` when the value is claimed already.
    async fn insert_pending(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<bool, StoreError>;
    /// The claim on `value`, `stale` when pending for longer than `stale_after` (by the
    /// database's clock, the one that stamped it).
    async fn claim_row(
        &self,
        kind: ClaimKind,
        value: &str,
        stale_after: Duration,
    ) -> Result<Option<ClaimRow>, StoreError>;
    /// Marks `owner`'s claim as held.
    async fn mark_held(&self, kind: ClaimKind, value: &str, owner: &str) -> Result<(), StoreError>;
    /// Deletes `owner`'s claim; only a pending one when `pending_only`.
    async fn delete(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
        pending_only: bool,
    ) -> Result<(), StoreError>;
}

/// What one claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAttempt {
    /// The claim is ours (new, or already ours).
    Ours,
    /// Another owner holds it, or claimed it recently and may still be running its command.
    Taken,
    /// Another owner claimed it more than a minute ago and never marked it held: its command
    /// may have died. The caller decides, from the owner's state, with `resolve_stale`.
    Stale { owner: String },
}

impl Store {
    /// One attempt at claiming `value` of `kind` for `owner`.
    pub async fn try_claim(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<ClaimAttempt, StoreError> {
        loop {
            if self.claims().insert_pending(kind, value, owner).await? {
                return Ok(ClaimAttempt::Ours);
            }
            let Some(row) = self.claims().claim_row(kind, value, STALE_AFTER).await? else {
                continue; // released in between: try again
            };
            return Ok(if row.owner == owner {
                ClaimAttempt::Ours
            } else if row.held || !row.stale {
                ClaimAttempt::Taken
            } else {
                ClaimAttempt::Stale { owner: row.owner }
            });
        }
    }

    /// Settles a stale claim of `owner`: marks it held when `owner_holds_value` (its command
    /// did commit), else drops it so the value can be claimed again.
    pub async fn resolve_stale(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
        owner_holds_value: bool,
    ) -> Result<(), StoreError> {
        if owner_holds_value {
            self.hold(kind, value, owner).await
        } else {
            self.claims().delete(kind, value, owner, true).await
        }
    }

    /// Marks `owner`'s claim as held: its command committed.
    pub async fn hold(&self, kind: ClaimKind, value: &str, owner: &str) -> Result<(), StoreError> {
        self.claims().mark_held(kind, value, owner).await
    }

    /// Gives up `owner`'s claim, pending or held (a failed command, a released server IP).
    pub async fn release(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.claims().delete(kind, value, owner, false).await
    }

    /// Who owns `value`, if anyone (pending or held).
    pub async fn claim_owner(
        &self,
        kind: ClaimKind,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = self.claims().claim_row(kind, value, STALE_AFTER).await?;
        Ok(row.map(|row| row.owner))
    }
}
