//! Public routes: codes, sign-up, sign-in and out, account recovery, password reset. The flows
//! that must not reveal whether an account exists answer first and do the slow work after.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use commands::flows::SmsPurpose;
use commands::Actor;
use domain::account::VerificationMethod;
use domain::values::{AccountId, Email, Mobile, ServerIp, VerificationCode};
use domain::DomainError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, Problem};
use super::extract::{parsed, AppJson, Client, Session};
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sms-codes", post(request_sms_code))
        .route("/v1/accounts", post(sign_up))
        .route("/v1/sessions", post(sign_in))
        .route("/v1/sessions/current", delete(sign_out))
        .route("/v1/account-recovery", post(start_recovery))
        .route(
            "/v1/account-recovery/{recovery_id}/confirmation",
            post(confirm_recovery),
        )
        .route("/v1/password-resets", post(request_reset))
        .route("/v1/password-resets/{token}", get(reset_methods))
        .route(
            "/v1/password-resets/{token}/verification-codes",
            post(send_reset_code),
        )
        .route(
            "/v1/password-resets/{token}/completion",
            post(complete_reset),
        )
}

/// Runs the slow part of an enumeration-safe flow after the answer, logging (not leaking) a
/// failure. Tracked in [`Handles::after_answer`](super::Handles::after_answer): a graceful
/// shutdown waits for it.
fn after_answer<F>(state: &AppState, what: &'static str, work: F)
where
    F: std::future::Future<Output = Result<(), commands::service::ServiceError>> + Send + 'static,
{
    state.after_answer.spawn(async move {
        if let Err(e) = work.await {
            tracing::warn!(flow = what, error = %e, "background step failed");
        }
    });
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SmsCodePurpose {
    Signup,
    Login,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsCodeRequest {
    #[schema(value_type = String, example = "+8613800138000")]
    pub mobile: Mobile,
    pub purpose: SmsCodePurpose,
}

#[derive(Serialize, ToSchema)]
pub struct SmsCodeAccepted {
    pub code_id: String,
}

/// Sends a sign-up or sign-in code by SMS (only when it can be used; the answer is the same).
#[utoipa::path(post, path = "/v1/sms-codes", request_body = SmsCodeRequest, tag = "public",
    responses((status = 202, body = SmsCodeAccepted), (status = 400, body = Problem), (status = 429, body = Problem)))]
pub async fn request_sms_code(
    State(state): State<AppState>,
    client: Client,
    AppJson(body): AppJson<SmsCodeRequest>,
) -> ApiResult<impl IntoResponse> {
    let purpose = match body.purpose {
        SmsCodePurpose::Signup => SmsPurpose::Signup,
        SmsCodePurpose::Login => SmsPurpose::Login,
    };
    let ticket = state.service.admit_sms_code(body.mobile, purpose).await?;
    let code_id = ticket.code_id.clone();
    let service = state.service.clone();
    let context = client.context(Actor::Anonymous);
    after_answer(&state, "sms-code", async move {
        service.send_sms_code(ticket, &context).await
    });
    Ok((StatusCode::ACCEPTED, Json(SmsCodeAccepted { code_id })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSignUp {
    pub login_email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MobileProof {
    pub mobile: String,
    pub code_id: String,
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SignUpRequest {
    Email(EmailSignUp),
    Mobile(MobileProof),
}

#[derive(Serialize, ToSchema)]
pub struct AccountCreated {
    pub account_id: String,
}

/// Creates an account with a login email and password, or with a mobile proved by SMS.
#[utoipa::path(post, path = "/v1/accounts", request_body = SignUpRequest, tag = "public",
    responses((status = 201, body = AccountCreated), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn sign_up(
    State(state): State<AppState>,
    client: Client,
    AppJson(body): AppJson<SignUpRequest>,
) -> ApiResult<impl IntoResponse> {
    let context = client.context(Actor::Anonymous);
    let account_id = match body {
        SignUpRequest::Email(EmailSignUp {
            login_email,
            password,
        }) => {
            let login_email: Email = parsed(login_email)?;
            let password = domain::password::Password::parse(&password, state.service.policy())
                .map_err(DomainError::from)?;
            state
                .service
                .sign_up_with_email(login_email, &password, &context)
                .await?
                .account_id
        }
        SignUpRequest::Mobile(MobileProof {
            mobile: m,
            code_id,
            code: c,
        }) => {
            state
                .service
                .sign_up_with_mobile(parsed(m)?, &code_id, parsed(c)?, &context)
                .await?
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            account_id: account_id.as_str().to_owned(),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordSignIn {
    /// A login email or an account ID.
    pub login: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SignInRequest {
    Password(PasswordSignIn),
    Sms(MobileProof),
}

#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    pub token: String,
    pub account_id: String,
    pub expires_at: DateTime<Utc>,
}

/// Signs in with a login (email or account ID) and password, or a login mobile and SMS code.
#[utoipa::path(post, path = "/v1/sessions", request_body = SignInRequest, tag = "public",
    responses((status = 201, body = SessionCreated), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    AppJson(body): AppJson<SignInRequest>,
) -> ApiResult<impl IntoResponse> {
    let context = client.context(Actor::Anonymous);
    let signed_in = match body {
        SignInRequest::Password(PasswordSignIn { login, password }) => {
            state
                .service
                .sign_in_with_password(&login, &password, &context)
                .await
        }
        SignInRequest::Sms(MobileProof {
            mobile: m,
            code_id,
            code: c,
        }) => {
            state
                .service
                .sign_in_with_sms(parsed(m)?, &code_id, parsed(c)?, &context)
                .await
        }
    };
    let signed_in = signed_in.map_err(|e| {
        let mut error = ApiError::from(e);
        // On sign-in only, wrong credentials are 401 (SPEC §3).
        if error.code == "invalid_credentials" {
            error.status = StatusCode::UNAUTHORIZED;
        }
        error
    })?;
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            token: signed_in.token,
            account_id: signed_in.account_id.as_str().to_owned(),
            expires_at: signed_in.expires_at,
        }),
    ))
}

/// Ends the caller's session.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "public",
    responses((status = 204), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn sign_out(State(state): State<AppState>, session: Session) -> ApiResult<StatusCode> {
    state.service.sign_out(&session.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, tag = "method", rename_all = "snake_case")]
pub enum RecoveryRequest {
    Mobile {
        #[schema(value_type = String)]
        mobile: Mobile,
    },
    AccountId {
        #[schema(value_type = String)]
        account_id: AccountId,
    },
    ServerIp {
        #[schema(value_type = String)]
        ip: ServerIp,
    },
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryStarted {
    pub recovery_id: String,
    pub masked_mobile: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`: the answer never tells whether an account was found.
    pub status: &'static str,
}

const ACCEPTED: Accepted = Accepted { status: "accepted" };

/// Finds an account again by mobile (202, same answer always), account ID or server IP.
#[utoipa::path(post, path = "/v1/account-recovery", request_body = RecoveryRequest, tag = "public",
    responses((status = 200, body = RecoveryStarted), (status = 202, body = Accepted), (status = 400, body = Problem)))]
pub async fn start_recovery(
    State(state): State<AppState>,
    client: Client,
    AppJson(body): AppJson<RecoveryRequest>,
) -> ApiResult<axum::response::Response> {
    let context = client.context(Actor::Anonymous);
    let started = match body {
        RecoveryRequest::Mobile { mobile } => {
            let ticket = state.service.admit_recovery_by_mobile(mobile);
            let service = state.service.clone();
            after_answer(&state, "recovery-by-mobile", async move {
                service.send_account_info(ticket, &context).await
            });
            return Ok((StatusCode::ACCEPTED, Json(ACCEPTED)).into_response());
        }
        RecoveryRequest::AccountId { account_id } => {
            state
                .service
                .recover_by_account_id(&account_id, &context)
                .await?
        }
        RecoveryRequest::ServerIp { ip } => {
            state.service.recover_by_server_ip(&ip, &context).await?
        }
    };
    let answer = Json(RecoveryStarted {
        recovery_id: started.recovery_id.clone(),
        masked_mobile: started.masked_mobile.clone(),
    });
    // Recording the request on the account it reached is work a decoy would not do: after the
    // answer, so that the answer's timing is the same for both.
    let service = state.service.clone();
    after_answer(&state, "recovery-request", async move {
        service.record_recovery_request(started, &context).await
    });
    Ok(answer.into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfirmation {
    #[schema(value_type = String)]
    pub mobile: Mobile,
}

/// Confirms a recovery with the full mobile number (202 always, answered before the check, so
/// that a real recovery and a decoy take the same time).
#[utoipa::path(post, path = "/v1/account-recovery/{recovery_id}/confirmation", request_body = RecoveryConfirmation,
    tag = "public", params(("recovery_id" = String, Path)),
    responses((status = 202, body = Accepted), (status = 400, body = Problem)))]
pub async fn confirm_recovery(
    State(state): State<AppState>,
    Path(recovery_id): Path<String>,
    client: Client,
    AppJson(body): AppJson<RecoveryConfirmation>,
) -> ApiResult<impl IntoResponse> {
    let service = state.service.clone();
    let context = client.context(Actor::Anonymous);
    after_answer(&state, "recovery-confirmation", async move {
        service
            .confirm_recovery(&recovery_id, body.mobile, &context)
            .await
    });
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(value_type = String)]
    pub login_email: Email,
}

/// Emails a reset link when the address is a login email (202 always).
#[utoipa::path(post, path = "/v1/password-resets", request_body = ResetRequest, tag = "public",
    responses((status = 202, body = Accepted), (status = 400, body = Problem), (status = 429, body = Problem)))]
pub async fn request_reset(
    State(state): State<AppState>,
    client: Client,
    AppJson(body): AppJson<ResetRequest>,
) -> ApiResult<impl IntoResponse> {
    let email = body.login_email;
    state.service.admit_reset(&email).await?;
    let service = state.service.clone();
    let context = client.context(Actor::Anonymous);
    after_answer(&state, "password-reset", async move {
        service.send_reset(&email, &context).await
    });
    Ok((StatusCode::ACCEPTED, Json(ACCEPTED)))
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CodeMethod {
    Sms,
    Email,
}

impl CodeMethod {
    pub fn method(self) -> VerificationMethod {
        match self {
            Self::Sms => VerificationMethod::Sms,
            Self::Email => VerificationMethod::Email,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VerificationMethodView {
    pub method: CodeMethod,
    pub masked_target: String,
}

#[derive(Serialize, ToSchema)]
pub struct ResetMethods {
    pub verification_methods: Vec<VerificationMethodView>,
}

/// The ways this reset can verify the person.
#[utoipa::path(get, path = "/v1/password-resets/{token}", tag = "public", params(("token" = String, Path)),
    responses((status = 200, body = ResetMethods), (status = 410, body = Problem)))]
pub async fn reset_methods(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<ResetMethods>> {
    let methods = state.service.reset_methods(&token).await?;
    Ok(Json(ResetMethods {
        verification_methods: methods
            .into_iter()
            .filter_map(|m| {
                let method = match m.method {
                    VerificationMethod::Sms => CodeMethod::Sms,
                    VerificationMethod::Email => CodeMethod::Email,
                    VerificationMethod::Password => return None,
                };
                Some(VerificationMethodView {
                    method,
                    masked_target: m.masked_target,
                })
            })
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetCodeRequest {
    pub method: CodeMethod,
}

#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    pub masked_target: String,
}

/// Sends a reset verification code to the recovery mobile or email.
#[utoipa::path(post, path = "/v1/password-resets/{token}/verification-codes", request_body = ResetCodeRequest,
    tag = "public", params(("token" = String, Path)),
    responses((status = 202, body = CodeSent), (status = 400, body = Problem), (status = 410, body = Problem), (status = 429, body = Problem)))]
pub async fn send_reset_code(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
    AppJson(body): AppJson<ResetCodeRequest>,
) -> ApiResult<impl IntoResponse> {
    let masked_target = state
        .service
        .send_reset_code(
            &token,
            body.method.method(),
            &client.context(Actor::Anonymous),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(CodeSent { masked_target })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetCompletion {
    pub new_password: String,
    pub new_password_confirmation: String,
    #[schema(value_type = Option<String>)]
    pub code: Option<VerificationCode>,
}

/// Sets the new password; every session of the account ends.
#[utoipa::path(post, path = "/v1/password-resets/{token}/completion", request_body = ResetCompletion,
    tag = "public", params(("token" = String, Path)),
    responses((status = 204), (status = 400, body = Problem), (status = 410, body = Problem)))]
pub async fn complete_reset(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
    AppJson(body): AppJson<ResetCompletion>,
) -> ApiResult<StatusCode> {
    state
        .service
        .complete_reset(
            &token,
            &body.new_password,
            &body.new_password_confirmation,
            body.code,
            &client.context(Actor::Anonymous),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
