//! `GET /reset-password?token=…`: the page the reset email links to. The script reads the token
//! from the address, lists the token's verification methods (`GET /v1/password-resets/{token}`),
//! sends a code by the chosen one (`…/verification-codes`) and completes the reset with the code
//! and the new password (`…/completion`). The token never reaches this handler's logic: the page
//! is the same for every token, and the API decides.

use axum::response::Response;

const BODY: &str = include_str!("assets/reset-password.html");
const SCRIPT: &str = include_str!("assets/reset-password.js");

pub async fn page() -> Response {
    super::page("Reset your password", BODY, "/assets/reset-password.js")
}

pub async fn script() -> Response {
    super::script(SCRIPT)
}
