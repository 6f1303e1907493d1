//! # testkit
//!
//! What accountd's tests share, written once: a fresh database per test on either backend, the
//! macro that runs one test body on both, a clock the test moves, value builders, and readers
//! of what the store holds, private servers, sample histories. A dev-dependency (and the
//! dependency of `accountd-bench`): nothing here is compiled into `accountd`.
//!
//! # Layout
//! - [`db`]: [`TestDatabase`] (a scratch PostgreSQL database or SQLite file, with a raw pool for
//!   assertions on stored rows) and [`on_both_backends!`].
//! - [`clock`]: [`TestClock`] and the instant tests start at.
//! - [`values`]: valid emails, mobiles, server IPs, passwords, keyrings and request contexts.
//! - [`service`]: a `CommandService` wired as the gateway wires it, and quick registrations.
//! - [`streams`]: stored rows of a stream, the whole global log, chain verification.
//! - [`procs`]: private PostgreSQL and NATS servers (one, or a cluster of three) that fault tests
//!   stop, restart and kill by their own PIDs, and `accountd` processes of one role each.
//! - [`poll`]: waiting for something with a deadline, never a blind sleep.
//! - [`sample`]: deterministic, realistic account histories (tests and `accountd-bench`).
#![forbid(unsafe_code)]

pub mod clock;
pub mod db;
pub mod procs;
pub mod sample;
pub mod scratch;
pub mod service;
pub mod streams;
pub mod values;

pub use clock::{t0, TestClock};

/// Everything at once, for `use testkit::prelude::*`.
pub mod prelude {
    pub use crate::clock::{t0, TestClock};
    pub use crate::db::{admin_url, Arg, Raw, TestDatabase};
    pub use crate::on_both_backends;
    pub use crate::service::*;
    pub use crate::streams::*;
    pub use crate::values::*;
    pub use crate::DEADLINE;
}
pub use db::{admin_url, Arg, Raw, TestDatabase};
pub use scratch::Scratch;

use std::future::Future;
use std::time::Duration;

/// How long a poll waits for something that must happen soon before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Calls `attempt` until it gives `Some`, for at most `within`; panics naming `what` after that.
/// This is how tests wait for work the server does after it answered (projections, sends), or
/// for a server to come up.
pub async fn poll<T, F, Fut>(what: &str, within: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {within:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
