//! What every request and answer goes through, whatever the route (issue 13):
//!
//! - [`bound_request_id`]: a client's `X-Request-Id` is kept only when it is short and plain
//!   (it is stored in every event's metadata and echoed back); otherwise a fresh one is made.
//! - [`read_body`]: the body is read whole, with a deadline, before any handler runs: a declared
//!   `Content-Length` over the limit is refused at once (413) without reading a byte, a body that
//!   does not arrive in time answers 408 (not a 503 from the request timeout), and a target with
//!   a NUL byte is a client error (400), never a store failure.
//! - [`no_store`]: no answer may be kept by a cache (tokens, personal data).
//! - [`problem_for_every_error`]: an error that a framework extractor produced as text (a bad
//!   path or query string) still reaches the client as `application/problem+json`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::ApiError;
use super::extract::payload_too_large;
use super::{AppState, BODY_LIMIT};

/// The longest request id kept, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether a client's request id may be kept: 1 to 128 letters, digits, `-`, `_`, `.` or `:`.
pub fn is_plain_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Drops an `X-Request-Id` that is not plain, so that the request-id layer (inside this one)
/// makes a fresh one.
pub async fn bound_request_id(mut request: Request, next: Next) -> Response {
    let plain = request
        .headers()
        .get_all("x-request-id")
        .iter()
        .map(|v| is_plain_request_id(v.as_bytes()))
        .collect::<Vec<_>>();
    if plain != [true] {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// Whether the path or query carries a percent-encoded NUL, which no identifier may hold and
/// PostgreSQL refuses in text.
fn has_encoded_nul(request: &Request) -> bool {
    let uri = request.uri();
    uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00"))
}

/// Reads the whole body before the handlers (see the module docs).
pub async fn read_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if has_encoded_nul(&request) {
        return ApiError::invalid_request("The request target may not contain a NUL byte.")
            .into_response();
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return payload_too_large().into_response();
    }
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, BODY_LIMIT).collect();
    let bytes = match tokio::time::timeout(state.http.body_read_timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => return payload_too_large().into_response(),
        Ok(Err(_)) => {
            return ApiError::invalid_request("The body could not be read.").into_response()
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "The body did not arrive in time.",
            )
            .into_response()
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `Cache-Control: no-store` on every answer.
pub async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The problem `code` of an error status that no handler chose a code for.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "unavailable",
        _ => "invalid_request",
    }
}

/// Turns an error answered in another form (axum's text rejections of a path or query) into a
/// problem document with the same status. The original text is dropped: it can repeat input.
pub async fn problem_for_every_error(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let detail = status
        .canonical_reason()
        .unwrap_or("The request could not be served.");
    let mut problem = ApiError::new(status, code_of(status), detail).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uuids_and_short_plain_ids_are_kept() {
        assert!(is_plain_request_id(b"6f1c0a4e-8a57-4a43-9d0a-0c3b1f2e9d11"));
        assert!(is_plain_request_id(b"req:42.a_b"));
    }

    #[test]
    fn long_empty_or_odd_ids_are_replaced() {
        assert!(!is_plain_request_id(b""));
        assert!(!is_plain_request_id(&[b'a'; MAX_REQUEST_ID_LEN + 1]));
        for odd in [&b"a b"[..], b"a\tb", b"<script>", "é".as_bytes(), b"a/b"] {
            assert!(!is_plain_request_id(odd), "{odd:?}");
        }
    }

    proptest! {
        #[test]
        fn a_kept_request_id_is_short_and_plain(id in proptest::collection::vec(any::<u8>(), 0..300)) {
            if is_plain_request_id(&id) {
                prop_assert!(id.len() <= MAX_REQUEST_ID_LEN);
                prop_assert!(std::str::from_utf8(&id).is_ok());
            }
        }
    }
}
