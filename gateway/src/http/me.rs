//! The account holder's routes (bearer session). Every `PUT` is gated by a step-up (checked
//! by the domain); the code-taking verification and confirmation routes need only the session.
//! The profile is folded from the account's own events, so it reflects a command at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::flows::IdentityProof;
use commands::Actor;
use domain::account::{Profile, VerificationMethod};
use domain::values::{Email, Mobile, VerificationCode};
use domain::Channel;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AppJson, Client, Session};
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/me/identity-verifications", post(start_verification))
        .route(
            "/v1/me/identity-verifications/{id}",
            post(confirm_verification),
        )
        .route("/v1/me/contact-mobile", put(change_contact_mobile))
        .route("/v1/me/contact-email", put(change_contact_email))
        .route(
            "/v1/me/contact-mobile/verification",
            post(verify_contact_mobile),
        )
        .route(
            "/v1/me/contact-email/verification",
            post(verify_contact_email),
        )
        .route("/v1/me/recovery-mobile", put(change_recovery_mobile))
        .route("/v1/me/recovery-email", put(change_recovery_email))
        .route(
            "/v1/me/recovery-mobile/confirmation",
            post(confirm_recovery_mobile),
        )
        .route(
            "/v1/me/recovery-email/confirmation",
            post(confirm_recovery_email),
        )
        .route("/v1/me/login-email", put(bind_login_email))
        .route("/v1/me/login-email/confirmation", post(confirm_login_email))
        .route("/v1/me/password", put(change_password))
        .route("/v1/me/history", get(history))
        .route(
            "/v1/me/sessions",
            get(list_sessions).delete(end_other_sessions),
        )
        .route("/v1/me/sessions/{session_id}", delete(end_session))
}

fn actor(session: &Session) -> Actor {
    Actor::Account(session.account_id.as_str().to_owned())
}

/// The caller's profile; recovery and pending values masked.
#[utoipa::path(get, path = "/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "The profile (SPEC §3), recovery and pending values masked"), (status = 401, body = Problem)))]
pub async fn me(State(state): State<AppState>, session: Session) -> ApiResult<Json<Profile>> {
    let account = (state.service)
        .account_as_of(&session.account_id, session.account_head)
        .await?
        .state;
    let profile = account
        .profile(state.service.now(), state.http.reminder_after_days)
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(profile.masked()))
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum StepUpMethod {
    Sms,
    Email,
    Password,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartVerification {
    pub method: StepUpMethod,
}

#[derive(Serialize, ToSchema)]
pub struct VerificationStarted {
    pub verification_id: String,
    /// Where the code went, masked; null for the password.
    pub masked_target: Option<String>,
}

/// Starts an identity verification (step-up) by SMS, email or password.
#[utoipa::path(post, path = "/v1/me/identity-verifications", request_body = StartVerification, tag = "me",
    security(("bearer" = [])),
    responses((status = 201, body = VerificationStarted), (status = 400, body = Problem), (status = 429, body = Problem)))]
pub async fn start_verification(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<StartVerification>,
) -> ApiResult<impl IntoResponse> {
    let method = match body.method {
        StepUpMethod::Sms => VerificationMethod::Sms,
        StepUpMethod::Email => VerificationMethod::Email,
        StepUpMethod::Password => VerificationMethod::Password,
    };
    let started = state
        .service
        .start_identity_verification(
            &session.account_id,
            &session.session_id,
            method,
            &client.context(actor(&session)),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(VerificationStarted {
            verification_id: started.verification_id,
            masked_target: started.masked_target,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmVerification {
    #[schema(value_type = Option<String>)]
    pub code: Option<VerificationCode>,
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Verified {
    pub verified_until: DateTime<Utc>,
}

/// Completes a step-up with the code or the password.
#[utoipa::path(post, path = "/v1/me/identity-verifications/{id}", request_body = ConfirmVerification, tag = "me",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Verified), (status = 400, body = Problem), (status = 429, body = Problem)))]
pub async fn confirm_verification(
    State(state): State<AppState>,
    Path(id): Path<String>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<ConfirmVerification>,
) -> ApiResult<Json<Verified>> {
    let proof = match (body.code, body.password) {
        (Some(code), None) => IdentityProof::Code(code),
        (None, Some(p)) => IdentityProof::Password(p),
        _ => {
            return Err(ApiError::invalid_request(
                "Give exactly one of code or password.",
            ))
        }
    };
    let verified_until = state
        .service
        .confirm_identity(
            &session.account_id,
            &session.session_id,
            &id,
            proof,
            &client.context(actor(&session)),
        )
        .await?;
    Ok(Json(Verified { verified_until }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileBody {
    #[schema(value_type = String, example = "+8613800138000")]
    pub mobile: Mobile,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    #[schema(value_type = String, example = "ada@example.com")]
    pub email: Email,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    #[schema(value_type = String, example = "123456")]
    pub code: VerificationCode,
}

#[derive(Serialize, ToSchema)]
pub struct Done {
    /// `ok` (the change took effect) or `pending` (a code was sent to confirm it).
    pub status: &'static str,
}

/// Changes the contact mobile at once (unverified) and sends a code to it. Needs a step-up.
#[utoipa::path(put, path = "/v1/me/contact-mobile", request_body = MobileBody, tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn change_contact_mobile(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<MobileBody>,
) -> ApiResult<Json<Done>> {
    let mobile = body.mobile;
    state
        .service
        .change_contact_mobile(
            &session.account_id,
            &session.session_id,
            mobile,
            &client.context(actor(&session)),
        )
        .await?;
    Ok(Json(Done { status: "ok" }))
}

/// Changes the contact email at once (unverified) and sends a code to it. Needs a step-up.
#[utoipa::path(put, path = "/v1/me/contact-email", request_body = EmailBody, tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Done), (status = 400, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn change_contact_email(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<EmailBody>,
) -> ApiResult<Json<Done>> {
    let email = body.email;
    state
        .service
        .change_contact_email(
            &session.account_id,
            &session.session_id,
            email,
            &client.context(actor(&session)),
        )
        .await?;
    Ok(Json(Done { status: "ok" }))
}

async fn verify_contact(
    state: AppState,
    session: Session,
    client: Client,
    channel: Channel,
    body: CodeBody,
) -> ApiResult<Json<Done>> {
    let code = body.code;
    state
        .service
        .verify_contact(
            &session.account_id,
            channel,
            code,
            &client.context(actor(&session)),
        )
        .await?;
    Ok(Json(Done { status: "ok" }))
}

/// Marks the contact mobile verified with the code sent to it.
#[utoipa::path(post, path = "/v1/me/contact-mobile/verification", request_body = CodeBody, tag = "me",
    security(("bearer" = [])), responses((status = 200, body = Done), (status = 400, body = Problem)))]
pub async fn verify_contact_mobile(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<Done>> {
    verify_contact(state, session, client, Channel::Sms, body).await
}

/// Marks the contact email verified with the code sent to it.
#[utoipa::path(post, path = "/v1/me/contact-email/verification", request_body = CodeBody, tag = "me",
    security(("bearer" = [])), responses((status = 200, body = Done), (status = 400, body = Problem)))]
pub async fn verify_contact_email(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<Done>> {
    verify_contact(state, session, client, Channel::Email, body).await
}

/// Asks to change the recovery mobile: a code goes to the new number; nothing changes yet.
#[utoipa::path(put, path = "/v1/me/recovery-mobile", request_body = MobileBody, tag = "me", security(("bearer" = [])),
    responses((status = 202, body = Done), (status = 400, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn change_recovery_mobile(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<MobileBody>,
) -> ApiResult<impl IntoResponse> {
    let mobile = body.mobile;
    state
        .service
        .request_recovery_mobile_change(
            &session.account_id,
            &session.session_id,
            mobile,
            &client.context(actor(&session)),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Done { status: "pending" })))
}

/// Asks to change the recovery email: a code goes to the new address; nothing changes yet.
#[utoipa::path(put, path = "/v1/me/recovery-email", request_body = EmailBody, tag = "me", security(("bearer" = [])),
    responses((status = 202, body = Done), (status = 400, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn change_recovery_email(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<EmailBody>,
) -> ApiResult<impl IntoResponse> {
    let email = body.email;
    state
        .service
        .request_recovery_email_change(
            &session.account_id,
            &session.session_id,
            email,
            &client.context(actor(&session)),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Done { status: "pending" })))
}

async fn confirm_recovery(
    state: AppState,
    session: Session,
    client: Client,
    channel: Channel,
    body: CodeBody,
) -> ApiResult<Json<Done>> {
    let code = body.code;
    state
        .service
        .confirm_recovery_change(
            &session.account_id,
            channel,
            code,
            &client.context(actor(&session)),
        )
        .await?;
    Ok(Json(Done { status: "ok" }))
}

/// Confirms the new recovery mobile with the code sent to it; the change takes effect.
#[utoipa::path(post, path = "/v1/me/recovery-mobile/confirmation", request_body = CodeBody, tag = "me",
    security(("bearer" = [])), responses((status = 200, body = Done), (status = 400, body = Problem)))]
pub async fn confirm_recovery_mobile(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<Done>> {
    confirm_recovery(state, session, client, Channel::Sms, body).await
}

/// Confirms the new recovery email with the code sent to it; the change takes effect.
#[utoipa::path(post, path = "/v1/me/recovery-email/confirmation", request_body = CodeBody, tag = "me",
    security(("bearer" = [])), responses((status = 200, body = Done), (status = 400, body = Problem)))]
pub async fn confirm_recovery_email(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<Done>> {
    confirm_recovery(state, session, client, Channel::Email, body).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginEmailBody {
    #[schema(value_type = String)]
    pub email: Email,
    /// Required when the account has no password.
    pub password: Option<String>,
}

/// Asks to bind a login email: a code goes to it. `login_email_already_bound` comes before the
/// step-up check; another account's login email answers `conflict`.
#[utoipa::path(put, path = "/v1/me/login-email", request_body = LoginEmailBody, tag = "me", security(("bearer" = [])),
    responses((status = 202, body = Done), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn bind_login_email(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<LoginEmailBody>,
) -> ApiResult<impl IntoResponse> {
    let email = body.email;
    state
        .service
        .request_login_email_binding(
            &session.account_id,
            &session.session_id,
            email,
            body.password.as_deref(),
            &client.context(actor(&session)),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Done { status: "pending" })))
}

/// Binds the login email with the code sent to it (and sets the password given at the PUT).
#[utoipa::path(post, path = "/v1/me/login-email/confirmation", request_body = CodeBody, tag = "me",
    security(("bearer" = [])), responses((status = 200, body = Done), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn confirm_login_email(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<CodeBody>,
) -> ApiResult<Json<Done>> {
    let code = body.code;
    state
        .service
        .confirm_login_email_binding(&session.account_id, code, &client.context(actor(&session)))
        .await?;
    Ok(Json(Done { status: "ok" }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
    pub new_password_confirmation: String,
}

/// Changes the password; every other session ends.
#[utoipa::path(put, path = "/v1/me/password", request_body = PasswordChange, tag = "me", security(("bearer" = [])),
    responses((status = 204), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    AppJson(body): AppJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    state
        .service
        .change_password(
            &session.account_id,
            &session.session_id,
            &body.current_password,
            &body.new_password,
            &body.new_password_confirmation,
            &client.context(actor(&session)),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A live session of the account, as its owner sees it (never its token).
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The last request made with it, to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The client address and user agent it was opened from, when known.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of this request.
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// The account's live sessions, newest first: where it is signed in, so that its owner can
/// end what they do not recognise (docs/adr/0009).
#[utoipa::path(get, path = "/v1/me/sessions", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = SessionList), (status = 401, body = Problem)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    session: Session,
) -> ApiResult<Json<SessionList>> {
    let live = state
        .read
        .live_sessions(session.account_id.as_str(), state.service.now())
        .await?;
    Ok(Json(SessionList {
        sessions: live
            .into_iter()
            .map(|s| SessionView {
                current: s.session_id == session.session_id.as_str(),
                id: s.session_id,
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    }))
}

/// Ends one live session of the account (the current one too). A session that is not the
/// account's own, or no longer live, answers 404: the route tells nothing about others.
#[utoipa::path(delete, path = "/v1/me/sessions/{session_id}", tag = "me",
    security(("bearer" = [])),
    params(("session_id" = String, Path, description = "An id from GET /v1/me/sessions")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn end_session(
    State(state): State<AppState>,
    session: Session,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    let ended = state
        .read
        .revoke_own_session(
            session.account_id.as_str(),
            &session_id,
            state.service.now(),
        )
        .await?;
    if ended {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Ends every live session of the account but the current one.
#[utoipa::path(delete, path = "/v1/me/sessions", tag = "me", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn end_other_sessions(
    State(state): State<AppState>,
    session: Session,
) -> ApiResult<StatusCode> {
    state
        .read
        .revoke_sessions_of(
            session.account_id.as_str(),
            Some(session.session_id.as_str()),
            state.service.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's own event history, secrets removed (as the audit API shows it).
#[utoipa::path(get, path = "/v1/me/history", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
pub async fn history(
    State(state): State<AppState>,
    session: Session,
) -> ApiResult<Json<serde_json::Value>> {
    let events = state
        .audit
        .events(session.account_id.as_str(), 0, u32::MAX)
        .await
        .map_err(|e| ApiError::fault("history", e))?;
    Ok(Json(events))
}
