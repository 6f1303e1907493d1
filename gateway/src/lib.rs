//! # gateway
//!
//! accountd's HTTP gateway (a thin axum layer over the write and read sides) and the pieces of
//! the `accountd` binary: configuration, the wiring of the two sides, the application that runs
//! every role in one process (the benchmarks are `accountd-bench`, in `tests/bench`).
//!
//! # Layout
//! - [`config`]: typed configuration from the environment (SPEC §7).
//! - [`wiring`]: the ports of one side implemented by the other.
//! - [`app`]: `Application::build / port / run_until_stopped`.
//! - [`workers`]: the bus, relay, notifier, reminder sweep and audit anchors as background roles.
//! - [`http`]: routes, extractors, errors, middleware, OpenAPI.
//! - [`breaker`]: the circuit breaker that makes requests fail fast while the store is down.
//! - [`audit`]: the audit module over the event store, and its CLI.
//! - [`pages`]: the HTML pages a person opens from a message (the reset page).
//! - [`outbox`]: `accountd outbox …`, reading the development file sink.
//! - [`progress`]: a spinner on stderr for long command-line work, on a terminal only.
#![forbid(unsafe_code)]

pub mod app;
pub mod audit;
pub mod breaker;
pub mod config;
pub mod http;
pub mod outbox;
pub mod pages;
pub mod progress;
pub mod wiring;
pub mod workers;
