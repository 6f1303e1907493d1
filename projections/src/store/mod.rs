//! The read side's storage seam (issue 10, ADR 0007): one trait per store. Every statement is
//! written once per dialect, in [`pg`] (PostgreSQL) and [`sqlite`] (the embedded file); the
//! code that runs statements differing only in spelling is written once, over the sqlx driver,
//! in [`sql`], and what really differs (batch load and save, anchors, the instance lock) is
//! each dialect's own. The backend is chosen once, when [`crate::ReadStore::open`] builds the
//! handles; everything above this module is dialect-free.
//!
//! Adding a query: a method on the store's trait, its statement in `pg/` and in `sqlite/`
//! (a field of [`sql::Statements`] when only the spelling differs), and a case in that store's
//! contract test (`tests/store_contract.rs`), which runs the same body against both.

pub(crate) mod pg;
pub(crate) mod sql;
pub(crate) mod sqlite;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stored::Checkpoint;

use crate::audit::{Anchor, AnchoredHead, StreamHead};
use crate::db::ReadError;
use crate::profile::{ProfileRow, Tables};
use crate::sessions::{ActiveSession, Session};

/// The read models: profiles and their servers, as the lookups and the reminder sweep see them.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The profile row of `account_id`, with its servers.
    async fn profile_row(&self, account_id: &str) -> Result<Option<ProfileRow>, ReadError>;
    /// Accounts whose recovery mobile or login mobile is `e164`, sorted.
    async fn accounts_by_mobile(&self, e164: &str) -> Result<Vec<String>, ReadError>;
    /// Accounts whose login email is `email`, sorted.
    async fn accounts_by_login_email(&self, email: &str) -> Result<Vec<String>, ReadError>;
    /// Accounts holding the assigned public IP `ip`, sorted.
    async fn accounts_by_server_ip(&self, ip: &str) -> Result<Vec<String>, ReadError>;
    /// The account whose live reset token has this SHA-256.
    async fn account_by_reset_token(&self, digest_hex: &str) -> Result<Option<String>, ReadError>;
    /// Up to `limit` accounts whose password was set before `changed_before` and was not
    /// reminded for, oldest password first.
    async fn passwords_changed_before(
        &self,
        changed_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, ReadError>;
    /// The stream sequence the profile of `account_id` reflects (0 without a row).
    async fn profile_sequence(&self, account_id: &str) -> Result<u64, ReadError>;
}

/// Bearer sessions, keyed by the SHA-256 of their token.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create(&self, token_hash: &str, session: &Session) -> Result<(), ReadError>;
    /// The unexpired, unrevoked session of `token_hash` at `now`, with its account's stream
    /// head (the `events` table lives in the same database).
    async fn active(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ActiveSession>, ReadError>;
    /// The live sessions of `account_id` at `now`, newest first.
    async fn live(&self, account_id: &str, now: DateTime<Utc>) -> Result<Vec<Session>, ReadError>;
    /// Records a use of `session_id` at `now`, unless one was recorded after `unless_after`
    /// (one write per session a minute, not one per request).
    async fn touch(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
        unless_after: DateTime<Utc>,
    ) -> Result<(), ReadError>;
    /// Revokes the live session `session_id` of `account_id`; false when there is none.
    async fn revoke_own(
        &self,
        account_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ReadError>;
    async fn revoke(&self, session_id: &str, now: DateTime<Utc>) -> Result<(), ReadError>;
    /// Revokes every live session of `account_id` but the one with id `keep`.
    async fn revoke_all_but(
        &self,
        account_id: &str,
        keep: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError>;
    /// Whether `account_id` had a session, revoked or not, from the client `ip` and
    /// `user_agent` (the same values; a missing value matches only a missing one) created or
    /// last used at or after `since`.
    async fn seen_client(
        &self,
        account_id: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<bool, ReadError>;
}

/// Checkpoints, batch transactions and rebuild tables of the projections.
#[async_trait]
pub trait ProjectionStore: Send + Sync {
    /// The stored checkpoint of projection `name` (the start when there is none).
    async fn checkpoint(&self, name: &str) -> Result<Checkpoint, ReadError>;
    /// A transaction for one batch.
    async fn begin(&self) -> Result<Box<dyn ProjectionTx>, ReadError>;
    /// A transaction holding checkpoint `name` (a live projector's commit waits for it),
    /// with the checkpoint it holds.
    async fn begin_holding(
        &self,
        name: &str,
    ) -> Result<(Box<dyn ProjectionTx>, Checkpoint), ReadError>;
    /// Empty `*_rebuild` copies of the profile tables, and no rebuild checkpoint.
    async fn create_copies(&self) -> Result<(), ReadError>;
    /// Waits until this process is the one active instance named `name`, for as long as the
    /// returned lease lives (PostgreSQL; the embedded store has one process).
    async fn exclusive(&self, name: &str) -> Lease;
}

/// One transaction of a projection.
#[async_trait]
pub trait ProjectionTx: Send {
    /// Moves checkpoint `name` to `to` if it stands at `expected` (`None`: wherever it is);
    /// returns whether it moved. Run first: its row lock orders concurrent instances.
    async fn move_checkpoint(
        &mut self,
        name: &str,
        expected: Option<Checkpoint>,
        to: Checkpoint,
        last_recorded_at: Option<DateTime<Utc>>,
    ) -> Result<bool, ReadError>;
    /// The rows (with servers) of `ids` that exist.
    async fn load(
        &mut self,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError>;
    /// Upserts `rows` and rewrites their servers.
    async fn save(&mut self, tables: Tables, rows: &[&ProfileRow]) -> Result<(), ReadError>;
    /// Replaces the live profile tables with the rebuilt copies (dropping them) and sets
    /// checkpoint `name` to `to`.
    async fn swap_in_copies(&mut self, name: &str, to: Checkpoint) -> Result<(), ReadError>;
    async fn commit(self: Box<Self>) -> Result<(), ReadError>;
}

/// The bus relay's checkpoint: how far into the log the relay has published.
#[async_trait]
pub trait RelayStore: Send + Sync {
    /// The stored checkpoint of relay `name` (the start when there is none).
    async fn relay_checkpoint(&self, name: &str) -> Result<Checkpoint, ReadError>;
    /// Moves checkpoint `name` from `from` to `to`; false when it no longer stands at `from`
    /// (another relay moved it).
    async fn move_relay_checkpoint(
        &self,
        name: &str,
        from: Checkpoint,
        to: Checkpoint,
    ) -> Result<bool, ReadError>;
    /// Moves checkpoint `name` back to the start of the log.
    async fn reset_relay_checkpoint(&self, name: &str) -> Result<(), ReadError>;
    /// Waits until this process is the one active relay `name`, for as long as the lease lives.
    async fn exclusive(&self, name: &str) -> Lease;
}

/// Anchors of the audit chain (migration 1003).
#[async_trait]
pub trait AnchorStore: Send + Sync {
    /// Starts writing an anchor: from here other writers wait until it is stored.
    async fn begin(&self) -> Result<Box<dyn AnchorTx>, ReadError>;
    /// The newest anchor.
    async fn latest(&self) -> Result<Option<Anchor>, ReadError>;
    /// The heads of anchor `up_to` (every account's latest row at or below it), by account.
    async fn heads(&self, up_to: i64) -> Result<BTreeMap<String, AnchoredHead>, ReadError>;
    /// The latest anchored head of `account_id`.
    async fn head(&self, account_id: &str) -> Result<Option<AnchoredHead>, ReadError>;
}

/// The writing of one anchor.
#[async_trait]
pub trait AnchorTx: Send {
    /// The heads of the newest anchor, as this writer sees them.
    async fn latest_heads(&mut self) -> Result<BTreeMap<String, AnchoredHead>, ReadError>;
    /// Stores the anchor (its `id` is ignored) with the heads that moved; returns its id.
    async fn store(
        self: Box<Self>,
        anchor: &Anchor,
        moved: &[StreamHead],
    ) -> Result<i64, ReadError>;
}

/// Being the one active instance; dropping it lets a standby take over.
pub struct Lease(#[allow(dead_code)] Option<Box<dyn Send>>);

impl Lease {
    pub(crate) fn none() -> Self {
        Self(None)
    }
    pub(crate) fn held(lock: impl Send + 'static) -> Self {
        Self(Some(Box::new(lock)))
    }
}

/// The statements of a swap, the same in both dialects (no parameters, standard SQL).
pub(crate) const SWAP_COPIES: [&str; 7] = [
    "DELETE FROM profiles",
    "INSERT INTO profiles SELECT * FROM profiles_rebuild",
    "DELETE FROM servers",
    "INSERT INTO servers SELECT * FROM servers_rebuild",
    "DROP TABLE profiles_rebuild",
    "DROP TABLE servers_rebuild",
    "DELETE FROM projection_checkpoints WHERE name = 'profiles.rebuild'",
];

/// The profile columns, in the order both dialects' upserts bind them.
pub(crate) const PROFILE_COLUMNS: &str = "account_id, last_sequence, registered_at, login_email, \
    login_mobile, contact_mobile, contact_mobile_verified, contact_email, contact_email_verified, \
    recovery_mobile, recovery_email, pending_recovery_mobile, pending_recovery_email, \
    pending_login_email, password_set, password_changed_at, reminded_for, reset_token_digest, \
    reset_token_expires_at";

/// The upsert's update of every column but the key (`EXCLUDED` is spelled alike in both).
pub(crate) const PROFILE_UPDATE: &str = "last_sequence = EXCLUDED.last_sequence, \
    registered_at = EXCLUDED.registered_at, login_email = EXCLUDED.login_email, \
    login_mobile = EXCLUDED.login_mobile, contact_mobile = EXCLUDED.contact_mobile, \
    contact_mobile_verified = EXCLUDED.contact_mobile_verified, \
    contact_email = EXCLUDED.contact_email, contact_email_verified = EXCLUDED.contact_email_verified, \
    recovery_mobile = EXCLUDED.recovery_mobile, recovery_email = EXCLUDED.recovery_email, \
    pending_recovery_mobile = EXCLUDED.pending_recovery_mobile, \
    pending_recovery_email = EXCLUDED.pending_recovery_email, \
    pending_login_email = EXCLUDED.pending_login_email, password_set = EXCLUDED.password_set, \
    password_changed_at = EXCLUDED.password_changed_at, reminded_for = EXCLUDED.reminded_for, \
    reset_token_digest = EXCLUDED.reset_token_digest, \
    reset_token_expires_at = EXCLUDED.reset_token_expires_at";

/// A stored count or sequence as the unsigned number it is.
pub(crate) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// A count or sequence as the database's integer.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Anchored heads from `(account_id, anchor_id, sequence, chain_hash)` rows.
pub(crate) fn heads_from(rows: Vec<(String, i64, i64, String)>) -> BTreeMap<String, AnchoredHead> {
    rows.into_iter()
        .map(|(account_id, anchor_id, sequence, chain_hash)| {
            let head = AnchoredHead {
                anchor_id,
                sequence: to_u64(sequence),
                chain_hash,
            };
            (account_id, head)
        })
        .collect()
}
