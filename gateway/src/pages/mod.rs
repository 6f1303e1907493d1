//! Small HTML pages a person opens from a message (SPEC §3 "Pages"): self-contained, no
//! dependency, no framework. Each page is a static body in the shared layout plus a script that
//! calls the public API exactly as documented, so the page has no server-side logic of its own.
//!
//! # Layout
//! - this file: the layout ([`page`]), the security headers every page carries, the shared
//!   assets (`/assets/accountd.css`, `/assets/accountd.js` with the `accountd.api` helper) and
//!   [`routes`].
//! - `reset_password.rs`: `GET /reset-password?token=…`, the link in the reset email.
//! - `secure_account.rs`: `GET /secure-account?token=…`, the "this wasn't me" link of every
//!   security notice.
//! - `assets/`: the CSS, the shared script and one script per page, compiled into the binary.
//!
//! To add a page: a module with its body and script (see `reset_password.rs`), one `route` line
//! for the page and one for its script in [`routes`].

mod reset_password;
mod secure_account;

use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::AppState;

/// What a browser may do on our pages: load our own scripts and styles and call our own API,
/// nothing else (no inline script, no framing, no form posts elsewhere).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const CSS: &str = include_str!("assets/accountd.css");
const SHARED_JS: &str = include_str!("assets/accountd.js");

/// Every page and its assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reset-password", get(reset_password::page))
        .route("/assets/reset-password.js", get(reset_password::script))
        .route("/secure-account", get(secure_account::page))
        .route("/assets/secure-account.js", get(secure_account::script))
        .route(
            "/assets/accountd.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route("/assets/accountd.js", get(|| async { script(SHARED_JS) }))
}

/// A page: `body` inside the shared layout, loading the shared script and then `script_path`.
/// Pages carry secrets in their URL (a reset token), so they are never cached and never sent
/// as a referrer.
pub fn page(title: &str, body: &str, script_path: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{title} · accountd</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/accountd.css\">\n\
         <script src=\"/assets/accountd.js\" defer></script>\n\
         <script src=\"{script_path}\" defer></script>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    );
    let mut response = asset("text/html; charset=utf-8", html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// A page's script.
pub fn script(source: &'static str) -> Response {
    asset("text/javascript; charset=utf-8", source)
}

fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
