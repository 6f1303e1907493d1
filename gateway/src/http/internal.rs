//! Internal routes for other services (bearer service token with a role): server IPs from the
//! compute service, the unmasked profile and lookups for support, notifications for other
//! services, and the audit API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::ports::PortFuture;
use domain::account::Profile;
use domain::values::{AccountId, Email, Mobile, ServerIp};
use domain::DomainError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AppJson, Client, Role, ServiceCaller};
use super::AppState;

/// The audit API's answers (implemented over the event store by the audit module).
pub trait Audit: Send + Sync {
    /// `{events: [...]}` of one account, after `after`, at most `limit`.
    fn events<'a>(
        &'a self,
        account_id: &'a str,
        after: u64,
        limit: u32,
    ) -> PortFuture<'a, serde_json::Value>;
    /// The profile as it stood at `at`, or `None` before the account existed.
    fn state<'a>(
        &'a self,
        account_id: &'a str,
        at: DateTime<Utc>,
    ) -> PortFuture<'a, Option<serde_json::Value>>;
    /// `{ok, events_checked, first_broken_sequence}`.
    fn verification<'a>(&'a self, account_id: &'a str) -> PortFuture<'a, serde_json::Value>;
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/internal/v1/accounts/{id}/servers", post(assign_server))
        .route(
            "/internal/v1/accounts/{id}/servers/{instance_id}",
            delete(release_server),
        )
        .route("/internal/v1/accounts/{id}", get(profile))
        .route("/internal/v1/lookup/mobile/{e164}", get(lookup_mobile))
        .route("/internal/v1/lookup/email/{email}", get(lookup_email))
        .route("/internal/v1/lookup/server-ip/{ip}", get(lookup_server_ip))
        .route("/internal/v1/accounts/{id}/notifications", post(notify))
        .route("/internal/v1/audit/accounts/{id}/events", get(audit_events))
        .route("/internal/v1/audit/accounts/{id}/state", get(audit_state))
        .route(
            "/internal/v1/audit/accounts/{id}/verification",
            get(audit_verification),
        )
}

fn account_id(id: &str) -> ApiResult<AccountId> {
    AccountId::parse(id).map_err(|_| ApiError::not_found())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignServer {
    pub instance_id: String,
    pub public_ip: String,
}

/// Records a server's public IP (role compute).
#[utoipa::path(post, path = "/internal/v1/accounts/{id}/servers", request_body = AssignServer, tag = "internal",
    params(("id" = String, Path)), security(("service" = [])),
    responses((status = 201), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn assign_server(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: ServiceCaller,
    client: Client,
    AppJson(body): AppJson<AssignServer>,
) -> ApiResult<StatusCode> {
    let actor = caller.require(Role::Compute)?;
    let id = account_id(&id)?;
    let ip = ServerIp::parse(&body.public_ip).map_err(DomainError::from)?;
    let instance_id = body.instance_id.trim();
    if instance_id.is_empty() || instance_id.len() > 128 {
        return Err(ApiError::invalid_request(
            "instance_id must be 1 to 128 characters.",
        ));
    }
    state
        .service
        .assign_server(&id, instance_id, ip, &client.context(actor))
        .await?;
    Ok(StatusCode::CREATED)
}

/// Records that a server was released (role compute).
#[utoipa::path(delete, path = "/internal/v1/accounts/{id}/servers/{instance_id}", tag = "internal",
    params(("id" = String, Path), ("instance_id" = String, Path)), security(("service" = [])),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn release_server(
    State(state): State<AppState>,
    Path((id, instance_id)): Path<(String, String)>,
    caller: ServiceCaller,
    client: Client,
) -> ApiResult<StatusCode> {
    let actor = caller.require(Role::Compute)?;
    let id = account_id(&id)?;
    state
        .service
        .release_server(&id, &instance_id, &client.context(actor))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The unmasked profile (role support): the domain's profile of the account, the one `/v1/me`
/// masks, folded from its events.
#[utoipa::path(get, path = "/internal/v1/accounts/{id}", tag = "internal", params(("id" = String, Path)),
    security(("service" = [])), responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: ServiceCaller,
) -> ApiResult<Json<Profile>> {
    caller.require(Role::Support)?;
    let id = account_id(&id)?;
    let profile = state
        .service
        .account(&id)
        .await?
        .state
        .profile(state.service.now(), state.http.reminder_after_days)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(profile))
}

#[derive(Serialize, ToSchema)]
pub struct AccountIds {
    pub account_ids: Vec<String>,
}

/// Accounts whose verified recovery mobile or login mobile this is (role support).
#[utoipa::path(get, path = "/internal/v1/lookup/mobile/{e164}", tag = "internal", params(("e164" = String, Path)),
    security(("service" = [])), responses((status = 200, body = AccountIds), (status = 400, body = Problem)))]
pub async fn lookup_mobile(
    State(state): State<AppState>,
    Path(e164): Path<String>,
    caller: ServiceCaller,
) -> ApiResult<Json<AccountIds>> {
    caller.require(Role::Support)?;
    let mobile = Mobile::parse(&e164).map_err(DomainError::from)?;
    Ok(Json(AccountIds {
        account_ids: state.read.accounts_by_mobile(mobile.as_str()).await?,
    }))
}

/// The account whose login email this is (role support).
#[utoipa::path(get, path = "/internal/v1/lookup/email/{email}", tag = "internal", params(("email" = String, Path)),
    security(("service" = [])), responses((status = 200, body = AccountIds), (status = 400, body = Problem)))]
pub async fn lookup_email(
    State(state): State<AppState>,
    Path(email): Path<String>,
    caller: ServiceCaller,
) -> ApiResult<Json<AccountIds>> {
    caller.require(Role::Support)?;
    let email = Email::parse(&email).map_err(DomainError::from)?;
    Ok(Json(AccountIds {
        account_ids: state.read.accounts_by_login_email(email.as_str()).await?,
    }))
}

/// The account holding this server IP (role support).
#[utoipa::path(get, path = "/internal/v1/lookup/server-ip/{ip}", tag = "internal", params(("ip" = String, Path)),
    security(("service" = [])), responses((status = 200, body = AccountIds), (status = 400, body = Problem)))]
pub async fn lookup_server_ip(
    State(state): State<AppState>,
    Path(ip): Path<String>,
    caller: ServiceCaller,
) -> ApiResult<Json<AccountIds>> {
    caller.require(Role::Support)?;
    let ip = ServerIp::parse(&ip).map_err(DomainError::from)?;
    Ok(Json(AccountIds {
        account_ids: state.read.accounts_by_server_ip(ip.as_str()).await?,
    }))
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Arrears,
    Expiry,
    Event,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    pub kind: NotificationKind,
    pub subject: String,
    pub body: String,
}

/// Sends a subscribed message to the account's verified contact values (role notifier).
#[utoipa::path(post, path = "/internal/v1/accounts/{id}/notifications", request_body = NotificationRequest,
    tag = "internal", params(("id" = String, Path)), security(("service" = [])),
    responses((status = 202), (status = 400, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)))]
pub async fn notify(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: ServiceCaller,
    AppJson(body): AppJson<NotificationRequest>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Role::Notifier)?;
    let id = account_id(&id)?;
    let account = state.service.account(&id).await?;
    if account.state.id.is_none() {
        return Err(ApiError::not_found());
    }
    let kind = match body.kind {
        NotificationKind::Arrears => projections::bus::NotificationKind::Arrears,
        NotificationKind::Expiry => projections::bus::NotificationKind::Expiry,
        NotificationKind::Event => projections::bus::NotificationKind::Event,
    };
    let request = projections::bus::NotificationRequest {
        kind,
        subject: body.subject,
        body: body.body,
    };
    request
        .validate()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let kind = kind.as_str();
    state
        .notifications
        .publish(
            id.as_str(),
            account.sequence,
            kind,
            &request.subject,
            &request.body,
        )
        .await
        .map_err(|e| ApiError::fault("publishing a notification request", e))?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The last sequence seen (exclusive); default 0.
    pub after: Option<String>,
    /// 1 to 1000; default 100.
    pub limit: Option<String>,
}

/// An account's events, secrets removed (role auditor).
#[utoipa::path(get, path = "/internal/v1/audit/accounts/{id}/events", tag = "audit",
    params(("id" = String, Path), EventsQuery), security(("service" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn audit_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    caller: ServiceCaller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Auditor)?;
    let id = account_id(&id)?;
    let after = match query.after.as_deref() {
        None => 0,
        Some(a) => a
            .parse::<u64>()
            .map_err(|_| ApiError::invalid_request("after must be a sequence number."))?,
    };
    let limit = match query.limit.as_deref() {
        None => 100,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid_request("limit must be between 1 and 1000."))?,
    };
    if state.service.account(&id).await?.state.id.is_none() {
        return Err(ApiError::not_found());
    }
    let events = state
        .audit
        .events(id.as_str(), after, limit)
        .await
        .map_err(audit_failure)?;
    Ok(Json(events))
}

fn audit_failure(e: domain::PortError) -> ApiError {
    ApiError::fault("audit query", e)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StateQuery {
    /// An RFC 3339 instant.
    pub at: String,
}

/// The profile as it stood at an instant, replayed from events (role auditor).
#[utoipa::path(get, path = "/internal/v1/audit/accounts/{id}/state", tag = "audit",
    params(("id" = String, Path), StateQuery), security(("service" = [])),
    responses((status = 200, body = Object), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn audit_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<StateQuery>,
    caller: ServiceCaller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Auditor)?;
    let id = account_id(&id)?;
    let at = DateTime::parse_from_rfc3339(&query.at)
        .map_err(|_| ApiError::invalid_request("at must be an RFC 3339 instant."))?
        .with_timezone(&Utc);
    let profile = state
        .audit
        .state(id.as_str(), at)
        .await
        .map_err(audit_failure)?;
    profile.map(Json).ok_or_else(ApiError::not_found)
}

/// Recomputes the account's hash chain and checks it against the last anchor (role auditor).
#[utoipa::path(get, path = "/internal/v1/audit/accounts/{id}/verification", tag = "audit",
    params(("id" = String, Path)), security(("service" = [])),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn audit_verification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    caller: ServiceCaller,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Role::Auditor)?;
    let id = account_id(&id)?;
    // Not the account's state: an account whose every event was deleted after an anchor must be
    // reported as broken, not as unknown. The audit module answers null for a stream that never
    // existed.
    let verification = state
        .audit
        .verification(id.as_str())
        .await
        .map_err(audit_failure)?;
    if verification.is_null() {
        return Err(ApiError::not_found());
    }
    Ok(Json(verification))
}
