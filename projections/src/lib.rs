//! # projections
//!
//! accountd's read side: catch-up projectors that keep read models from the event log, the
//! queries the gateway and the recovery flows use, and sessions (operational state).
//!
//! # Layout
//! - [`audit`]: history, state at an instant, hash-chain verification, anchors and export
//!   (issue 7), read from the event store through the `AuditLog` port.
//! - [`log`]: the `EventLog` port (implemented by the write side, wired by the binary).
//! - [`db`]: the read store: opening it (the one place that chooses PostgreSQL or SQLite).
//! - [`store`]: the storage seam: one trait per store, implemented once per dialect.
//! - [`profile`]: the profile reducer and its tables (`profiles`, `servers`).
//! - [`projector`]: the catch-up loop: one transaction per batch, checkpoint included.
//! - [`batches`]: the loop of every catch-up worker: woken by commits, paced, retried.
//! - [`rebuild`]: rebuilding a projection from the log and swapping it in.
//! - [`queries`]: profile by id, lookups by mobile / login email / server IP / reset token,
//!   the password-age sweep, and read-your-writes waits.
//! - [`sessions`]: bearer sessions, hashed at rest.
//! - [`bus`]: NATS JetStream or the in-process bus behind one interface (streams, publishes,
//!   durable consumers).
//! - [`relay`]: the catch-up relay from the event log to the bus, checkpointed after the acks.
//! - [`notifier`]: the consumers that turn events and requests into email and SMS (templates,
//!   delivery log, SMTP / SMS gateway / file sink).
#![forbid(unsafe_code)]

pub mod audit;
pub mod batches;
pub mod bus;
pub mod db;
pub mod log;
pub mod notifier;
pub mod profile;
pub mod projector;
pub mod queries;
pub mod rebuild;
pub mod relay;
pub mod sessions;
pub mod store;

pub use db::{ReadError, ReadStore};
pub use log::EventLog;
pub use projector::Projector;
