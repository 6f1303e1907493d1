//! "This wasn't me" (docs/adr/0009): `POST /v1/account-protection/{token}`, the action behind
//! the link in every security notice. Anonymous and rate-limited per IP like the other public
//! routes; the token is the only credential, and it works once.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use commands::Actor;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiResult, Problem};
use super::extract::Client;
use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/account-protection/{token}", post(secure_account))
}

/// What following the link did.
#[derive(Serialize, ToSchema)]
pub struct AccountSecured {
    /// Always true: every session ended; password sign-in and sensitive changes wait for a
    /// completed password reset.
    pub frozen: bool,
    /// The change the notice was about: `contact_mobile`, `contact_email`, `recovery_mobile`,
    /// `recovery_email`, `login_email`, `password`, `password_reset` or `sign_in` (a sign-in
    /// from a new client).
    pub change: String,
    /// Whether that change was undone (the value before it restored). Passwords and sign-ins
    /// cannot be, and a change that a later one already replaced is left alone.
    pub reverted: bool,
}

/// Freezes the account the link belongs to and reverts the change its notice was about.
#[utoipa::path(post, path = "/v1/account-protection/{token}", tag = "public",
    params(("token" = String, Path, description = "The token of the link in a security notice")),
    responses((status = 200, body = AccountSecured), (status = 410, body = Problem),
        (status = 429, body = Problem)))]
pub async fn secure_account(
    State(state): State<AppState>,
    Path(token): Path<String>,
    client: Client,
) -> ApiResult<Json<AccountSecured>> {
    let secured = state
        .service
        .secure_account(&token, &client.context(Actor::Anonymous))
        .await?;
    Ok(Json(AccountSecured {
        frozen: true,
        change: secured.change.kind().to_owned(),
        reverted: secured.reverted,
    }))
}
