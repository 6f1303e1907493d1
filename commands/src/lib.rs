//! # commands
//!
//! accountd's write side: everything that turns a parsed command into committed events, on
//! PostgreSQL (postgres-es's table) or on the embedded SQLite store (sqlite-es's table).
//!
//! # Layout
//! - [`store`]: the storage seam: one trait per store, implemented in `store/pg` and
//!   `store/sqlite`; [`Store`] chooses the backend once, from the location (ADR 0007).
//! - [`executor`]: load → decide → append with per-event metadata and hash chain, retrying a
//!   lost race for a sequence.
//! - [`context`]: who issued a command and from where (becomes event metadata).
//! - [`claims`]: values owned by at most one account (login email, login mobile, server IP).
//! - [`hasher`]: Argon2id on a bounded blocking pool in reused memory, queueing a bounded wait.
//! - [`secrets`]: the keyring behind code HMACs, token digests, sealing and decoys.
//! - [`service`]: the `CommandService`: executing account commands, claims, rate limits.
//! - [`flows`]: one file per flow the gateway calls (sign-up, sign-in, step-up, contact and
//!   recovery values, login email, password change and reset, account recovery, servers).
//! - [`limits`]: code cooldowns and daily caps, per-IP request limits, in the shared store.
//! - [`ports`]: what the write side needs from the read side (directory, sessions).
//! - [`idempotency`]: Idempotency-Key records with a lease, nothing secret in clear.
#![forbid(unsafe_code)]

pub mod claims;
pub mod context;
pub mod executor;
pub mod flows;
pub mod hasher;
pub mod idempotency;
pub mod limits;
pub mod ports;
pub mod secrets;
pub mod service;
pub mod store;

pub use context::{Actor, CommandContext};
pub use executor::{CommandError, Committed, Executor, Loaded};
pub use service::CommandService;
pub use store::{Checkpoint, RecordedEvent, Store, StoreError};
