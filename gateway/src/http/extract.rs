//! Extractors: JSON bodies whose rejections are our problems, the bearer session, the service
//! caller, and the client's context (request id, IP, user agent) that becomes event metadata.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use commands::{Actor, CommandContext};
use domain::values::AccountId;
use domain::SessionId;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;

/// A JSON body: `application/json` only (415), malformed or unknown fields (400), and over
/// 64 KiB (413), each as a problem document.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The body must be application/json.",
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(payload_too_large())
            }
            Err(rejection) => Err(ApiError::invalid_request(rejection.body_text())),
        }
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The body is larger than 64 KiB.",
    )
}

/// The client: request id, IP (from the trusted proxy header when configured, else the
/// socket) and user agent.
#[derive(Debug, Clone)]
pub struct Client {
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn context(&self, actor: Actor) -> CommandContext {
        CommandContext {
            actor,
            request_id: self.request_id.clone(),
            ip: self.ip,
            user_agent: self.user_agent.clone(),
        }
    }

    /// The key of per-IP limits.
    pub fn ip_key(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_of(parts, state))
    }
}

pub fn client_of(parts: &Parts, state: &AppState) -> Client {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ip = match &state.http.trusted_proxy_header {
        Some(name) => header(name).and_then(|v| {
            // The left-most address is the original client in X-Forwarded-For style headers.
            v.split(',')
                .next()
                .and_then(|first| first.trim().parse().ok())
        }),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip()),
    };
    Client {
        request_id: header("x-request-id"),
        ip,
        user_agent: header(header::USER_AGENT.as_str()),
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The signed-in account holder.
#[derive(Debug, Clone)]
pub struct Session {
    pub account_id: AccountId,
    pub session_id: SessionId,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let session = state
            .read
            .active_session(token, state.service.now())
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Self {
            account_id: AccountId::parse(&session.account_id)
                .map_err(|_| ApiError::unauthenticated())?,
            session_id: SessionId::new(session.session_id),
        })
    }
}

/// Internal callers' roles (SPEC §7 `ACCOUNTD_SERVICE_TOKENS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Compute,
    Support,
    Notifier,
    Auditor,
}

impl Role {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "compute" => Some(Self::Compute),
            "support" => Some(Self::Support),
            "notifier" => Some(Self::Notifier),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Support => "support",
            Self::Notifier => "notifier",
            Self::Auditor => "auditor",
        }
    }
}

/// An internal caller proved by a service token.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub roles: Vec<Role>,
}

impl ServiceCaller {
    /// Refuses a caller without `role` (403).
    pub fn require(&self, role: Role) -> Result<Actor, ApiError> {
        if self.roles.contains(&role) {
            Ok(Actor::Service(role.as_str().to_owned()))
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<AppState> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let roles: Vec<Role> = state
            .http
            .service_tokens
            .iter()
            .filter(|(_, expected)| bool::from(expected.as_bytes().ct_eq(token.as_bytes())))
            .map(|(role, _)| *role)
            .collect();
        if roles.is_empty() {
            return Err(ApiError::unauthenticated());
        }
        Ok(Self { roles })
    }
}
