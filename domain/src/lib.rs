//! # domain
//!
//! accountd's pure model: the aggregates, their commands and events, the value objects and
//! every rule of SPEC §2 that concerns one aggregate. No I/O, no database, no network: time,
//! randomness, keyed hashing and sealing come in through [`DomainServices`], and slow password
//! hashing is done by the command layer before a command runs ([`PasswordCheck`]).
//!
//! # Layout
//! - [`values`]: `AccountId`, `Mobile`, `Email`, `ServerIp`, `VerificationCode`, built only by parsing.
//! - [`password`]: the password policy and the compiled-in list of common passwords.
//! - [`account`]: the account aggregate (state, events, commands, decisions, profile).
//! - [`challenge`]: the sign-up / sign-in SMS challenge aggregate.
//! - [`recovery`]: the account-recovery-by-ID-or-IP aggregate.
//! - [`codes`]: verification codes as the aggregates keep them.
//! - [`rules`]: the fixed numbers of the rules (code lifetime, lockout, …).
//! - [`services`]: the traits and secret-holding types handed to the aggregates.
//! - [`error`]: the one domain error enum.
//! - [`chain`]: the per-stream hash chain (canonical JSON, SHA-256) and its verification.
//! - [`stored`]: how events become rows (type name, payload, version) and back.
#![forbid(unsafe_code)]

pub mod account;
pub mod chain;
pub mod challenge;
pub mod codes;
pub mod error;
pub mod password;
pub mod recovery;
pub mod rules;
pub mod services;
pub mod stored;
pub mod values;

pub use account::{Account, AccountCommand, AccountEvent};
pub use challenge::{Challenge, ChallengeCommand, ChallengeEvent};
pub use codes::{Channel, CodePurpose};
pub use error::{DomainError, PortError};
pub use recovery::{Recovery, RecoveryCommand, RecoveryEvent};
pub use services::{
    Clock, Digest, DomainServices, PasswordCheck, PasswordHash, ReuseCheck, Sealed, Secrets,
    SessionId, SystemClock,
};
pub use stored::EVENT_VERSION;
