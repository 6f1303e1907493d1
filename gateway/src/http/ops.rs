//! Operations: liveness, readiness (store and bus reachable), Prometheus metrics, OpenAPI.
//!
//! Readiness reaches every dependency for real (a `SELECT 1` on the store, a JetStream request
//! on NATS), concurrently, each within [`READY_CHECK_TIMEOUT`], so `/readyz` answers within a
//! second whatever is down, and names what is.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, Problem};
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The longest one readiness check may take (they run concurrently).
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs one readiness check within [`READY_CHECK_TIMEOUT`]: `Err` names the cause.
async fn check<E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), String> {
    match tokio::time::timeout(READY_CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {} ms",
            READY_CHECK_TIMEOUT.as_millis()
        )),
    }
}

/// The store and the bus answer; a 503 names the ones that do not.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let (store, bus) = tokio::join!(check(state.store.ping()), check(state.notifications.ping()));
    if store.is_err() {
        // Probes usually come before the next request: let the breaker confirm and open.
        state.breaker.report_failure();
    }
    let down: Vec<&str> = [("store", store), ("bus", bus)]
        .into_iter()
        .filter_map(|(name, outcome)| {
            let reason = outcome.err()?;
            // The reason stays in the log: 5xx bodies say nothing internal.
            tracing::warn!(dependency = name, %reason, "not ready");
            Some(name)
        })
        .collect();
    if down.is_empty() {
        return Ok(Json(Health { status: "ready" }));
    }
    let mut error = ApiError::unavailable(2);
    error.detail = format!("Not ready: {} unreachable.", down.join(" and "));
    Err(error)
}

/// Prometheus text.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        body,
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}
