//! Problem details (RFC 9457, `application/problem+json`) with a stable machine `code`. Every
//! domain refusal and technical failure is mapped to its problem here, in one `match`; 5xx
//! bodies say nothing internal. The cause of a 5xx travels with the response as a [`Fault`]
//! extension and is logged once, with the request id, by `middleware::access_log`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::service::ServiceError;
use domain::DomainError;
use serde::Serialize;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds for `Retry-After` (429 and 503).
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log only (never the body).
    pub cause: Option<String>,
    /// The store failed: the response carries [`StoreFailure`] so that the breaker sees it.
    pub store_failure: bool,
}

/// The cause of a server failure, carried from the handler to the access log.
#[derive(Debug, Clone)]
pub struct Fault(pub String);

/// A response extension: this answer is a failure of the store (see `crate::breaker`).
#[derive(Debug, Clone, Copy)]
pub struct StoreFailure;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The stable machine code (SPEC §3).
    pub code: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            cause: None,
            store_failure: false,
        }
    }

    /// A 503 for a failed store or dependency: its `cause` (what failed: `what`, and why) is
    /// logged once by the access log, and the breaker is told (both live in the store's
    /// database).
    pub fn fault(what: &str, cause: impl std::fmt::Display) -> Self {
        Self {
            cause: Some(format!("{what}: {cause}")),
            ..Self::store_unavailable()
        }
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Nothing was found here.",
        )
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "A valid bearer token is required.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This caller may not use this route.",
        )
    }

    pub fn unavailable(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable; try again shortly.",
            )
        }
    }

    /// A 503 for a failure of the store.
    pub fn store_unavailable() -> Self {
        Self {
            store_failure: true,
            ..Self::unavailable(2)
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        use DomainError as D;
        let detail = error.to_string();
        let (status, code) = match &error {
            D::InvalidValue(_)
            | D::PasswordRequired
            | D::PasswordAlreadySet
            | D::VerificationMethodUnavailable(_)
            | D::CodeRequired
            | D::AlreadyCurrent => (StatusCode::BAD_REQUEST, "invalid_request"),
            D::PasswordPolicy(_) => (StatusCode::BAD_REQUEST, "password_policy_violation"),
            D::PasswordMismatch => (StatusCode::BAD_REQUEST, "password_mismatch"),
            D::PasswordReused => (StatusCode::BAD_REQUEST, "password_reused"),
            D::InvalidCode => (StatusCode::BAD_REQUEST, "invalid_code"),
            D::CodeExpired => (StatusCode::BAD_REQUEST, "code_expired"),
            D::InvalidCredentials => (StatusCode::BAD_REQUEST, "invalid_credentials"),
            D::IdentityVerificationRequired => {
                (StatusCode::FORBIDDEN, "identity_verification_required")
            }
            D::AccountNotFound | D::ServerNotFound => (StatusCode::NOT_FOUND, "not_found"),
            D::AccountAlreadyExists
            | D::Conflict
            | D::ServerInstanceTaken
            | D::StalePasswordCheck => (StatusCode::CONFLICT, "conflict"),
            D::LoginEmailRequired => (StatusCode::CONFLICT, "login_email_required"),
            D::LoginEmailAlreadyBound => (StatusCode::CONFLICT, "login_email_already_bound"),
            D::ResetTokenInvalid => (StatusCode::GONE, "reset_token_invalid"),
            D::ProtectionTokenInvalid => (StatusCode::GONE, "protection_token_invalid"),
            D::AccountFrozen => (StatusCode::FORBIDDEN, "account_frozen"),
            D::RecoveryClosed => (StatusCode::BAD_REQUEST, "invalid_request"),
            D::Locked { until } => {
                let seconds = (*until - chrono::Utc::now()).num_seconds().max(1) as u64;
                return Self::new(StatusCode::TOO_MANY_REQUESTS, "locked", detail)
                    .with_retry_after(seconds);
            }
        };
        Self::new(status, code, detail)
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Domain(e) => e.into(),
            ServiceError::RateLimited(retry) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests; try again later.",
            )
            .with_retry_after(retry.seconds()),
            ServiceError::Overloaded(_) => Self::unavailable(1),
            ServiceError::Store(e) => Self::fault("store failure", e),
            ServiceError::Unavailable(e) => Self::fault("dependency failure", e),
        }
    }
}

impl From<projections::ReadError> for ApiError {
    fn from(error: projections::ReadError) -> Self {
        Self::fault("read store failure", error)
    }
}

impl From<commands::StoreError> for ApiError {
    fn from(error: commands::StoreError) -> Self {
        ServiceError::Store(error).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            kind: format!("https://accountd.dev/problems/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
        };
        let mut response = (self.status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Fault(cause));
        }
        if self.store_failure {
            response.extensions_mut().insert(StoreFailure);
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
