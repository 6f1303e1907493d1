//! # gateway
//!
//! accountd's HTTP gateway (a thin axum layer over the write and read sides) and the pieces of
//! the `accountd` binary: configuration, the wiring of the two sides, the application that runs
//! every role in one process, and the benchmarks.
//!
//! # Layout
//! - [`config`]: typed configuration from the environment (SPEC §7).
//! - [`wiring`]: the ports of one side implemented by the other.
//! - [`app`]: `Application::build / port / run_until_stopped`.
//! - [`http`]: routes, extractors, errors, middleware, OpenAPI.
//! - [`bench`]: `accountd bench …`.
#![forbid(unsafe_code)]

pub mod app;
pub mod bench;
pub mod config;
pub mod http;
pub mod wiring;
