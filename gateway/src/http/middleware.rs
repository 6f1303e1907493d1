//! Cross-cutting request handling: per-IP limits on public routes, Idempotency-Key on POST
//! commands, a request timeout answered as a problem, failing fast while the store is down, and
//! request metrics; and the hardening every request gets (issue 13): bounded client headers, the body read whole before any
//! handler (early 413, 408 for a body that never arrives), no NUL in the target, `no-store` on
//! every answer, and a problem document for every error.

use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use commands::idempotency::{Begin, IdempotentRequest, Replayed};
use sha2::{Digest, Sha256};

use super::error::{ApiError, Fault, StoreFailure};
use super::extract::{client_of, payload_too_large};
use super::{AppState, BODY_LIMIT};

/// What requests that match no route are counted under: a path is chosen by the client, so
/// using it as a label would grow the metrics without bound (and could carry a reset token).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route template (`/v1/password-resets/{token}`), or [`UNMATCHED_ROUTE`].
fn route_of(request: &Request) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned())
}

/// Per client IP and public route: `ACCOUNTD_IP_RATE_LIMIT` requests a minute (0 is off).
pub async fn ip_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let per_minute = state.http.ip_rate_limit;
    if per_minute == 0 {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let client = client_of(&parts, &state);
    let route = {
        let request = Request::from_parts(parts.clone(), Body::empty());
        // Unmatched requests share one bucket whatever their method (which the client picks).
        match route_of(&request) {
            route if route == UNMATCHED_ROUTE => route,
            route => format!("{} {route}", parts.method),
        }
    };
    match state
        .store
        .admit_request(&client.ip_key(), &route, per_minute, state.service.now())
        .await
    {
        Ok(Ok(())) => next.run(Request::from_parts(parts, body)).await,
        Ok(Err(retry)) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests from this address; try again later.",
        )
        .with_retry_after(retry.seconds())
        .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Answers 503 when a request takes longer than the configured timeout. A hung database is
/// one cause: the breaker is told, and its probe decides.
pub async fn timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.http.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.breaker.report_failure();
            ApiError::unavailable(1).into_response()
        }
    }
}

/// While the breaker is open (the store does not answer), every request but the operations
/// routes answers 503 at once instead of waiting for the pool; an answer that is a store
/// failure tells the breaker, which probes the store (see `crate::breaker`).
pub async fn fail_fast(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let operations = matches!(
        request.uri().path(),
        "/healthz" | "/readyz" | "/metrics" | "/openapi.json"
    );
    if operations {
        return next.run(request).await;
    }
    if state.breaker.is_open() {
        return ApiError::unavailable(1).into_response();
    }
    let response = next.run(request).await;
    if response.extensions().get::<StoreFailure>().is_some() {
        state.breaker.report_failure();
    }
    response
}

/// The method as a metrics label: the standard ones, else `other` (a client can send any token).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// The request span of the `TraceLayer`: what every log line of a request carries. The route
/// template, never the path (which can hold a reset token).
pub fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = method_label(request.method()),
        route = %route_of(request),
        request_id = %request_id,
    )
}

/// Counts requests and their latency by method, route and status, and writes the access log:
/// one line per request (method, route template, status, latency, request id in its span), and
/// the cause of a server failure, once.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method()).to_owned();
    let route = route_of(&request);
    let response = next.run(request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    if let Some(Fault(cause)) = response.extensions().get::<Fault>() {
        tracing::error!(status, cause = %cause, "request failed");
    }
    tracing::info!(
        target: "accountd::access",
        method = %method,
        route = %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("accountd_http_requests_total", &labels).increment(1);
    metrics::histogram!("accountd_http_request_seconds", &labels).record(latency.as_secs_f64());
    response
}

/// Idempotency-Key on POST (SPEC §3): scoped to caller, method and path for 24 hours. A retry
/// with the same key and body gets the first response and changes nothing; another body answers
/// 422; a request still in flight answers 409 until its lease (the request timeout) lapses, after
/// which a retry runs again. Server failures (5xx) are not remembered, so they can be retried.
/// The records and their rules are `commands::idempotency`'s.
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key.filter(|_| request.method() == Method::POST) else {
        return next.run(request).await;
    };
    if key.is_empty() || key.len() > 255 {
        return ApiError::invalid_request("Idempotency-Key must be 1 to 255 characters.")
            .into_response();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return payload_too_large().into_response();
    };
    let caller = caller_of(&parts, &state);
    let idempotent = IdempotentRequest {
        caller: &caller,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        key: &key,
        body: &bytes,
    };
    let records = state.service.idempotency();
    let lease = match records.begin(&idempotent, state.http.request_timeout).await {
        Ok(Begin::Run(lease)) => lease,
        Ok(Begin::Replay(replayed)) => return replay(replayed),
        Ok(Begin::InFlight) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "A request with this Idempotency-Key is still in flight.",
            )
            .into_response()
        }
        Ok(Begin::OtherBody) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used with another body.",
            )
            .into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        let _ = records.forget(&lease).await;
        return ApiError::unavailable(1).into_response();
    };
    let outcome = if parts.status.is_server_error() {
        records.forget(&lease).await
    } else {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        records
            .finish(&lease, parts.status.as_u16(), content_type, &bytes)
            .await
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The recorded response, marked as a replay.
fn replay(replayed: Replayed) -> Response {
    let mut response = Response::new(Body::from(replayed.body));
    *response.status_mut() = StatusCode::from_u16(replayed.status).unwrap_or(StatusCode::OK);
    if let Ok(content_type) = HeaderValue::from_str(&replayed.content_type) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Who a request comes from, for scoping idempotency keys: the bearer token's hash, or the
/// client IP for anonymous public requests.
fn caller_of(parts: &axum::http::request::Parts, state: &AppState) -> String {
    match parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(auth) => format!("bearer:{}", hex::encode(Sha256::digest(auth.as_bytes()))),
        None => format!("ip:{}", client_of(parts, state).ip_key()),
    }
}
