//! `GET /secure-account?token=…`: the page every security notice links to (docs/adr/0009). The
//! page explains what securing the account does and calls `POST /v1/account-protection/{token}`
//! only when the person confirms with its button, never on load: mail scanners and link
//! previews open links, and a GET must not freeze an account. The token never reaches this
//! handler's logic: the page is the same for every token, and the API decides.

use axum::response::Response;

const BODY: &str = include_str!("assets/secure-account.html");
const SCRIPT: &str = include_str!("assets/secure-account.js");

pub async fn page() -> Response {
    super::page("Secure your account", BODY, "/assets/secure-account.js")
}

pub async fn script() -> Response {
    super::script(SCRIPT)
}
