//! The HTTP API of SPEC §3: a thin axum layer. Handlers parse bodies into domain values, call a
//! `CommandService` flow or a read model, and map errors in one place (`error.rs`).
//!
//! # Layout
//! - `error.rs`: problem+json and the one mapping from domain and service errors.
//! - `extract.rs`: JSON bodies, bearer sessions, service callers, client context.
//! - `middleware.rs`: per-IP limits, idempotency keys, timeouts, failing fast while the store
//!   is down, the request span, the access log (one line per request, and a server failure's
//!   cause once) and metrics.
//! - `hardening.rs`: bounded request ids, the body read with a deadline, `no-store`, problem
//!   documents for every error.
//! - `serve.rs`: the HTTP/1 and HTTP/2 server with a header-read timeout.
//! - `public.rs`, `me.rs`, `internal.rs`, `ops.rs`: the route groups; `protection.rs`: the
//!   "this wasn't me" link of security notices.
//! - `openapi.rs`: the OpenAPI 3.1 document generated from the handlers and DTOs.

pub mod error;
pub mod extract;
mod hardening;
pub mod internal;
mod me;
mod middleware;
pub mod openapi;
mod ops;
mod protection;
mod public;
pub mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::Router;
use commands::{CommandService, Store};
use metrics_exporter_prometheus::PrometheusHandle;
use projections::ReadStore;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

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
    /// The longest the body of a request may take to arrive before it is answered 408.
    pub body_read_timeout: Duration,
    /// The longest a connection may take to send a request's headers (or stay idle between
    /// requests) before it is closed.
    pub header_read_timeout: Duration,
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

/// Everything a handler can reach, behind one `Arc`: axum clones the state for every
/// middleware and extractor of every request, and one reference count is cheaper to move than
/// the dozens inside these handles (the profile of the contact-change benchmark showed the
/// clones and drops at ~4% of the machine).
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// The handles in [`AppState`].
pub struct Handles {
    pub service: CommandService,
    pub store: Store,
    pub read: ReadStore,
    pub notifications: Arc<dyn Notifications>,
    pub audit: Arc<dyn crate::http::internal::Audit>,
    pub http: Arc<HttpConfig>,
    pub metrics: Option<PrometheusHandle>,
    /// Open while the store does not answer: requests then fail fast.
    pub breaker: crate::breaker::Breaker,
    /// The work enumeration-safe flows run after their answer (`public::after_answer`): a
    /// graceful shutdown waits for it, so that an answered request is not dropped half-done.
    pub after_answer: tokio_util::task::TaskTracker,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    use axum::handler::Handler;
    use axum::middleware::{from_fn, from_fn_with_state};

    let request_id = HeaderName::from_static("x-request-id");
    let ip_limit = from_fn_with_state(state.clone(), middleware::ip_limit);
    let public = public::routes()
        .merge(protection::routes())
        .route_layer(ip_limit.clone());
    // Unmatched paths are limited too: probing for routes costs the same as using them.
    let not_found = (|| async { error::ApiError::not_found() }).layer(ip_limit);
    Router::new()
        .merge(public)
        .merge(me::routes())
        .merge(internal::routes())
        .merge(ops::routes())
        .merge(crate::pages::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This route does not take that method.",
            )
        })
        .layer(from_fn(hardening::problem_for_every_error))
        .layer(from_fn_with_state(state.clone(), middleware::idempotency))
        .layer(from_fn_with_state(state.clone(), middleware::fail_fast))
        .layer(from_fn_with_state(state.clone(), middleware::timeout))
        .layer(from_fn_with_state(state.clone(), hardening::read_body))
        .layer(from_fn(middleware::access_log))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::extract::Request| {
                    middleware::request_span(request)
                })
                // Failures are logged once, with their cause, by `access_log`.
                .on_failure(()),
        )
        .layer(from_fn(hardening::no_store))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(from_fn(hardening::bound_request_id))
        .with_state(state)
}
