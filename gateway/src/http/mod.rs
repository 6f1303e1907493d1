//! The HTTP API of SPEC §3: a thin axum layer. Handlers parse bodies into domain values, call a
//! `CommandService` flow or a read model, and map errors in one place (`error.rs`).
//!
//! # Layout
//! - `error.rs`: problem+json and the one mapping from domain and service errors.
//! - `extract.rs`: JSON bodies, bearer sessions, service callers, client context.
//! - `middleware.rs`: request ids, per-IP limits, idempotency keys, timeouts, failing fast
//!   while the store is down, metrics.
//! - `public.rs`, `me.rs`, `internal.rs`, `ops.rs`: the route groups.
//! - `openapi.rs`: the OpenAPI 3.1 document generated from the handlers and DTOs.

pub mod error;
pub mod extract;
pub mod internal;
mod me;
mod middleware;
pub mod openapi;
mod ops;
mod public;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::Router;
use commands::{CommandService, Store};
use metrics_exporter_prometheus::PrometheusHandle;
use projections::ReadStore;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use extract::Role;

/// Bodies over this answer 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// How the HTTP layer is configured (SPEC §7).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Requests a minute per client IP and public route; 0 turns the limit off.
    pub ip_rate_limit: u32,
    /// The header holding the client IP behind a trusted proxy.
    pub trusted_proxy_header: Option<String>,
    /// (role, token) of internal callers.
    pub service_tokens: Vec<(Role, String)>,
    /// Days after which a password change is recommended.
    pub reminder_after_days: i64,
    /// The longest a request may take before it is answered 503.
    pub request_timeout: Duration,
}

/// Publishing subscribed messages for an account (the bus), and whether the bus answers.
pub trait Notifications: Send + Sync {
    /// Publishes a subscribed message; it goes to the contact values as they are once the
    /// account's events up to `after_sequence` are taken into account.
    fn publish<'a>(
        &'a self,
        account_id: &'a str,
        after_sequence: u64,
        kind: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> commands::ports::PortFuture<'a, ()>;
    fn ping(&self) -> commands::ports::PortFuture<'_, ()>;
}

/// Everything a handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: CommandService,
    pub store: Store,
    pub read: ReadStore,
    pub notifications: Arc<dyn Notifications>,
    pub audit: Arc<dyn crate::http::internal::Audit>,
    pub http: Arc<HttpConfig>,
    pub metrics: Option<PrometheusHandle>,
    /// Open while the store does not answer: requests then fail fast.
    pub breaker: crate::breaker::Breaker,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let public = public::routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        middleware::ip_limit,
    ));
    Router::new()
        .merge(public)
        .merge(me::routes())
        .merge(internal::routes())
        .merge(ops::routes())
        .merge(crate::pages::routes())
        .fallback(|| async { error::ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This route does not take that method.",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::idempotency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::fail_fast,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::timeout,
        ))
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
