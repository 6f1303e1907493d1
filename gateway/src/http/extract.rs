//! Extractors: JSON bodies whose rejections are our problems, the bearer session, the service
//! caller, and the client's context (request id, IP, user agent) that becomes event metadata.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
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

/// A JSON body: `application/json` only, with no parameter but `charset=utf-8` (415);
/// malformed, with unknown fields or with a NUL character in a string (400); and over 64 KiB
/// (413, see `hardening::read_body`), each as a problem document.
pub struct AppJson<T>(pub T);

/// Whether `content_type` is `application/json`, optionally with `charset=utf-8`. Other JSON
/// flavours (`application/vnd.api+json`) and other charsets are refused: the body is parsed as
/// UTF-8 JSON and nothing else.
fn is_json(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    let media_type_ok = parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/json"));
    media_type_ok
        && parts.all(|parameter| {
            parameter.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("charset")
                    && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            })
        })
}

/// Whether a JSON text holds a NUL character. JSON can carry one only as the escape `\u0000`,
/// which starts with a backslash that is not itself escaped (preceded by an even number of
/// backslashes).
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(at, window)| {
        window == b"\\u0000"
            && json[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The body must be application/json (UTF-8).",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::invalid_request("The body could not be read."))?;
        if has_escaped_nul(&bytes) {
            return Err(ApiError::invalid_request(
                "A string in the body contains a NUL character.",
            ));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid_request(rejection.body_text())),
        }
    }
}

/// A value of the domain from a string the body carried, for the fields serde cannot type
/// itself (the variants of an untagged body, where a failed conversion would only say that no
/// variant matched); typed fields elsewhere convert through the same `TryFrom<String>`.
pub fn parsed<T>(raw: String) -> Result<T, ApiError>
where
    T: TryFrom<String, Error = domain::values::ValueError>,
{
    T::try_from(raw).map_err(|e| domain::DomainError::from(e).into())
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

/// The longest user agent kept, in bytes: it is stored in every event's metadata.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// `value` cut to at most `max` bytes, at a character boundary.
fn truncated(value: &str, max: usize) -> &str {
    let mut end = value.len().min(max);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// The client address a trusted proxy reports: the right-most entry of the header, which is the
/// one our proxy appended (entries to its left were written by the client and prove nothing).
fn proxied_ip(value: &str) -> Option<IpAddr> {
    value.rsplit(',').next()?.trim().parse().ok()
}

pub fn client_of(parts: &Parts, state: &AppState) -> Client {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let socket = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    // A proxy header that is missing or not an address falls back to the socket's address:
    // never no address at all, which would share one per-IP limit among such requests.
    let ip = state
        .http
        .trusted_proxy_header
        .as_deref()
        .and_then(header)
        .and_then(proxied_ip)
        .or(socket);
    Client {
        // Already bounded by `hardening::bound_request_id`.
        request_id: header("x-request-id").map(str::to_owned),
        ip,
        user_agent: header(header::USER_AGENT.as_str())
            .map(|agent| truncated(agent, MAX_USER_AGENT_LEN).to_owned()),
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
    /// The sequence of the account's last event when the session was looked up: a read answers
    /// from the executor's memo when it is that far (see [`CommandService::account_as_of`]).
    ///
    /// [`CommandService::account_as_of`]: commands::CommandService::account_as_of
    pub account_head: u64,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthenticated)?;
        let active = state
            .read
            .active_session(token, state.service.now())
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        let session = active.session;
        // The last use its owner sees in GET /v1/me/sessions.
        state
            .read
            .touch_session(&session, state.service.now())
            .await?;
        Ok(Self {
            account_id: AccountId::parse(&session.account_id)
                .map_err(|_| ApiError::unauthenticated())?,
            session_id: SessionId::new(session.session_id),
            account_head: u64::try_from(active.account_head).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn only_utf8_application_json_is_json() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for refused in [
            "application/json; charset=utf-16",
            "application/vnd.api+json",
            "application/jsonx",
            "text/json",
            "application/json; foo=bar",
            "",
        ] {
            assert!(!is_json(refused), "{refused}");
        }
    }

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(has_escaped_nul(br#"{"a": "x\u0000y"}"#));
        assert!(has_escaped_nul(br#"{"a": "\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "u0000"}"#));
    }

    #[test]
    fn the_proxy_header_is_read_from_the_right() {
        assert_eq!(
            proxied_ip("198.51.100.7, 203.0.113.9"),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(proxied_ip("1.2.3.4, not-an-ip"), None);
    }

    proptest! {
        #[test]
        fn a_nul_in_any_string_is_found(s in "\\PC*", at in 0usize..64) {
            let mut chars: Vec<char> = s.chars().collect();
            chars.insert(at.min(chars.len()), '\0');
            let text: String = chars.into_iter().collect();
            let json = serde_json::to_vec(&serde_json::json!({ "field": text })).unwrap();
            prop_assert!(has_escaped_nul(&json));
        }

        #[test]
        fn no_nul_is_found_where_there_is_none(s in "\\PC*") {
            let json = serde_json::to_vec(&serde_json::json!({ "field": s })).unwrap();
            prop_assert_eq!(has_escaped_nul(&json), s.contains('\0'));
        }

        #[test]
        fn a_truncated_user_agent_is_a_prefix_within_the_bound(s in "\\PC{0,400}") {
            let cut = truncated(&s, MAX_USER_AGENT_LEN);
            prop_assert!(cut.len() <= MAX_USER_AGENT_LEN);
            prop_assert!(s.starts_with(cut));
        }
    }
}
