//! # tests
//!
//! End-to-end tests of accountd: the real application (every role in one process) started on
//! port 0 against a fresh PostgreSQL database or a fresh embedded store, driven over HTTP.
//!
//! # Layout
//! - this file: [`spawn_app`] and the [`TestApp`] handle (HTTP helpers, reading what was sent,
//!   the events recorded), [`poll`] (waiting with a deadline, never a blind sleep), the
//!   problem assertion [`assert_problem`], and [`on_both_backends!`], which turns one async
//!   flow into a test per backend.
//! - [`browser`]: a headless Chromium over WebDriver, for the HTML pages.
//! - [`procs`]: private PostgreSQL and NATS servers (one, or a cluster of three) that fault tests
//!   stop, restart and kill, and `accountd` processes of one role each.
//! - `tests/smoke.rs`: the first flow.
//! - `tests/browser.rs`: the reset page, driven in Chromium.
//! - `tests/operations_faults.rs`: readiness and failing fast through outages of those servers.
//! - `tests/cluster.rs`: the cluster shape, every role its own `accountd` process
//!   ([`procs::Accountd`]) on a three-node NATS cluster ([`procs::NatsCluster`]), losing a node,
//!   the active relay and the active projector mid-run, and the node coming back.
//! - `tests/e2e/`: one binary, one file per flow of SPEC §3 (one binary links once and runs
//!   its tests in parallel).
//!
//! # What was sent
//! The application's notifier writes every message to a file sink in the test's data folder:
//! [`TestApp::outbox`] reads it, and [`TestApp::message_to`] waits for one message. Codes and
//! reset tokens are read from their sealed copies in the event store ([`TestApp::latest_code`],
//! [`TestApp::latest_reset_token`], or [`TestApp::code_for`] / [`TestApp::reset_token_for`],
//! which poll them): a test about a flow then does not depend on the notifier's timing, and the
//! tests about messages read the outbox.
#![forbid(unsafe_code)]

pub mod browser;

/// Waiting with a deadline, and private servers and processes, are the test kit's.
pub use testkit::{poll, procs};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commands::secrets::Keyring;
use commands::Store;
use domain::Sealed;
use gateway::app::Application;
use gateway::config::Config;
pub use projections::notifier::senders::OutboxLine;
use serde_json::{json, Value};
use testkit::TestDatabase;
use tokio::sync::oneshot;

/// Where a test app keeps its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Embedded,
}

/// The secret key every test app uses (so tests can open sealed codes).
pub const SECRET_KEY: [u8; 32] = [42; 32];
/// Service tokens of the test apps.
pub const COMPUTE_TOKEN: &str = "compute-token-0123456789";
pub const SUPPORT_TOKEN: &str = "support-token-0123456789";
pub const NOTIFIER_TOKEN: &str = "notifier-token-0123456789";
pub const AUDITOR_TOKEN: &str = "auditor-token-0123456789";

/// A running application.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Store,
    /// The application's read store (its own pool on the same database).
    pub read: projections::ReadStore,
    pub keyring: Keyring,
    pub data_dir: PathBuf,
    /// Every response body this handle received, as text, so that a test can check that no
    /// secret ever left the server in clear.
    pub transcript: Arc<Mutex<Vec<String>>>,
    /// The work the application runs after its answers (empty for an attached application).
    after_answer: tokio_util::task::TaskTracker,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _database: Option<TestDatabase>,
}

/// Standard base64 (the form of `ACCOUNTD_SECRET_KEY`).
pub fn base64(bytes: &[u8]) -> String {
    use std::fmt::Write;
    // Standard base64 without a dependency: the key is fixed, so encode it once here.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let _ = write!(
                    out,
                    "{}",
                    ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char
                );
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Starts the application on `backend` with `extra` configuration on top of the test defaults.
pub async fn spawn_app_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let data_dir =
        std::env::temp_dir().join(format!("accountd_e2e_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).expect("a temporary data folder");
    let mut vars: HashMap<String, String> = HashMap::from([
        ("ACCOUNTD_BIND".into(), "127.0.0.1:0".into()),
        ("ACCOUNTD_DATA_DIR".into(), data_dir.display().to_string()),
        ("ACCOUNTD_SECRET_KEY".into(), base64(&SECRET_KEY)),
        (
            "ACCOUNTD_SERVICE_TOKENS".into(),
            format!(
                "compute:{COMPUTE_TOKEN},support:{SUPPORT_TOKEN},notifier:{NOTIFIER_TOKEN},auditor:{AUDITOR_TOKEN}"
            ),
        ),
        // Its default differs by store (30 days on PostgreSQL, off on the embedded store), and
        // a flow must behave alike on both: the tests of the notice turn it on.
        ("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS".into(), "0".into()),
    ]);
    let database = match backend {
        Backend::Postgres => {
            let db = TestDatabase::postgres().await;
            vars.insert("DATABASE_URL".into(), db.url.clone());
            Some(db)
        }
        Backend::Embedded => None,
    };
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_vars(|name| vars.get(name).cloned()).expect("test configuration");
    // Composed by the one function `accountd serve` uses: every role in one process, the
    // notifier writing to the outbox in the data folder.
    let app = Application::serve(&config)
        .await
        .expect("the application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.state().store.clone();
    let read = app.state().read.clone();
    let after_answer = app.state().after_answer.clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop.await;
    }));
    TestApp {
        base,
        http: reqwest::Client::new(),
        store,
        read,
        keyring: Keyring::new(SECRET_KEY, []),
        data_dir,
        transcript: Arc::new(Mutex::new(Vec::new())),
        after_answer,
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
    }
}

/// A handle on an application running elsewhere (an `accountd gateway` process of the cluster
/// test) at `base`, reading the events through `store` and the read models through `read`.
/// Its data folder is an empty temporary one (the notifiers' outboxes are their own).
pub fn attach(base: String, store: Store, read: projections::ReadStore) -> TestApp {
    let data_dir =
        std::env::temp_dir().join(format!("accountd_e2e_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).expect("a temporary data folder");
    TestApp {
        base,
        http: reqwest::Client::new(),
        store,
        read,
        keyring: Keyring::new(SECRET_KEY, []),
        data_dir,
        transcript: Arc::new(Mutex::new(Vec::new())),
        after_answer: tokio_util::task::TaskTracker::new(),
        shutdown: None,
        server: None,
        _database: None,
    }
}

/// Starts the application on `backend` with the test defaults.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// An HTTP answer: status, headers, the body as JSON (Null when empty or not JSON) and as text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The problem `code`, when the answer is a problem document.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Retry-After` in seconds, when present.
    pub fn retry_after(&self) -> Option<u64> {
        self.header("retry-after").and_then(|v| v.parse().ok())
    }
}

/// Asserts that `answer` is the problem document of SPEC §3 with `status` and `code`:
/// `application/problem+json`, the numeric `status` repeated in the body, and the machine code.
#[track_caller]
pub fn assert_problem(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, Some(code)),
        "expected a {status} {code} problem, got {answer:?}"
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "a problem is application/problem+json: {answer:?}"
    );
    assert_eq!(
        answer.body["status"], status,
        "the problem repeats its status: {answer:?}"
    );
    assert!(
        answer.body["title"].is_string(),
        "a problem has a title: {answer:?}"
    );
    if status == 429 || status == 503 {
        assert!(
            answer.retry_after().is_some_and(|s| s >= 1),
            "{status} carries Retry-After: {answer:?}"
        );
    }
}

/// How long the tests wait for what the server does after an answer: SPEC §2 promises read
/// models within 2 seconds and messages within 5; a loaded CI machine gets some slack.
pub const EVENTUALLY: Duration = Duration::from_secs(10);

/// A strong password that no test means to be refused.
pub const PASSWORD: &str = "Tq7#vLm2!x";

/// Whether `text` holds `digits` as a whole number (not inside a longer run of digits): how a
/// six-digit code would show if it leaked.
pub fn contains_number(text: &str, digits: &str) -> bool {
    text.match_indices(digits).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// Runs one async flow as two tests, one per backend: `flow::on_postgres` and
/// `flow::on_the_embedded_store`.
#[macro_export]
macro_rules! on_both_backends {
    ($flow:ident) => {
        mod $flow {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$flow($crate::Backend::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_the_embedded_store() {
                super::$flow($crate::Backend::Embedded).await;
            }
        }
    };
}

impl TestApp {
    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.answer(request).await
    }

    /// Sends `method path` with the headers and raw body given (for malformed requests).
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.answer(request).await
    }

    /// Sends a JSON `POST` with extra headers (Idempotency-Key, x-request-id).
    pub async fn post_with(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.answer(request).await
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        self.transcript
            .lock()
            .expect("the transcript is never poisoned: pushing cannot panic")
            .push(text.clone());
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        self.send("DELETE", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.send("POST", path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Answer {
        self.send("PUT", path, Some(token), Some(body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send("GET", path, token, None).await
    }

    /// Signs up by email; returns the account id.
    pub async fn sign_up(&self, email: &str, password: &str) -> String {
        let answer = self
            .post(
                "/v1/accounts",
                None,
                json!({"login_email": email, "password": password}),
            )
            .await;
        assert_eq!(answer.status, 201, "sign-up: {answer:?}");
        answer.body["account_id"]
            .as_str()
            .expect("an account id")
            .to_owned()
    }

    /// Signs in by login and password; returns the bearer token.
    pub async fn sign_in(&self, login: &str, password: &str) -> String {
        let answer = self
            .post(
                "/v1/sessions",
                None,
                json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(answer.status, 201, "sign-in: {answer:?}");
        answer.body["token"].as_str().expect("a token").to_owned()
    }

    /// Steps the session up by password.
    pub async fn step_up_by_password(&self, token: &str, password: &str) {
        let started = self
            .post(
                "/v1/me/identity-verifications",
                Some(token),
                json!({"method": "password"}),
            )
            .await;
        assert_eq!(started.status, 201, "step-up start: {started:?}");
        let id = started.body["verification_id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let confirmed = self
            .post(
                &format!("/v1/me/identity-verifications/{id}"),
                Some(token),
                json!({"password": password}),
            )
            .await;
        assert_eq!(confirmed.status, 200, "step-up confirm: {confirmed:?}");
    }

    /// Asks for a sign-up or sign-in SMS code (`purpose` `signup` or `login`); returns the
    /// `code_id`.
    pub async fn request_sms_code(&self, mobile: &str, purpose: &str) -> String {
        let answer = self
            .post(
                "/v1/sms-codes",
                None,
                json!({"mobile": mobile, "purpose": purpose}),
            )
            .await;
        assert_eq!(answer.status, 202, "sms code: {answer:?}");
        answer.body["code_id"]
            .as_str()
            .expect("a code id")
            .to_owned()
    }

    /// Signs up by mobile (code requested, read, answered); returns the account id.
    pub async fn sign_up_by_mobile(&self, mobile: &str) -> String {
        let code_id = self.request_sms_code(mobile, "signup").await;
        let code = self.code_for(&code_id).await;
        let answer = self
            .post(
                "/v1/accounts",
                None,
                json!({"mobile": mobile, "code_id": code_id, "code": code}),
            )
            .await;
        assert_eq!(answer.status, 201, "sign-up by mobile: {answer:?}");
        answer.body["account_id"]
            .as_str()
            .expect("an account id")
            .to_owned()
    }

    /// Signs in by login mobile and SMS code; returns the bearer token.
    pub async fn sign_in_by_sms(&self, mobile: &str) -> String {
        let code_id = self.request_sms_code(mobile, "login").await;
        let code = self.code_for(&code_id).await;
        let answer = self
            .post(
                "/v1/sessions",
                None,
                json!({"mobile": mobile, "code_id": code_id, "code": code}),
            )
            .await;
        assert_eq!(answer.status, 201, "sign-in by SMS: {answer:?}");
        answer.body["token"].as_str().expect("a token").to_owned()
    }

    /// Steps the session of `account_id` up with a code to its recovery mobile.
    pub async fn step_up_by_sms(&self, token: &str, account_id: &str) {
        let started = self
            .post(
                "/v1/me/identity-verifications",
                Some(token),
                json!({"method": "sms"}),
            )
            .await;
        assert_eq!(started.status, 201, "step-up start: {started:?}");
        let id = started.body["verification_id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let code = self.code_for(account_id).await;
        let confirmed = self
            .post(
                &format!("/v1/me/identity-verifications/{id}"),
                Some(token),
                json!({"code": code}),
            )
            .await;
        assert_eq!(confirmed.status, 200, "step-up confirm: {confirmed:?}");
    }

    /// `GET /v1/me`, which must answer 200.
    pub async fn me(&self, token: &str) -> Value {
        let me = self.get("/v1/me", Some(token)).await;
        assert_eq!(me.status, 200, "GET /v1/me: {me:?}");
        me.body
    }

    /// The newest code of `aggregate_id` (account, or SMS challenge `code_id`), waiting for it
    /// when it is sent after the answer.
    pub async fn code_for(&self, aggregate_id: &str) -> String {
        poll(&format!("a code for {aggregate_id}"), EVENTUALLY, || {
            self.latest_code(aggregate_id)
        })
        .await
    }

    /// The newest reset token of `account_id`, waiting for it (it is issued after the answer)
    /// and for its link to work, as it does by the time the email arrives: the server indexes
    /// the token just after it records the event, so reading the store directly can be a few
    /// milliseconds ahead of the link.
    pub async fn reset_token_for(&self, account_id: &str) -> String {
        poll(
            &format!("a working reset token for {account_id}"),
            EVENTUALLY,
            || async {
                let token = self.latest_reset_token(account_id).await?;
                let link = self
                    .get(&format!("/v1/password-resets/{token}"), None)
                    .await;
                (link.status == 200).then_some(token)
            },
        )
        .await
    }

    /// Every stored event of every stream, in store order: (aggregate type, aggregate id, type,
    /// payload).
    pub async fn all_events(&self) -> Vec<(String, String, String, Value)> {
        let sql = "SELECT aggregate_type, aggregate_id, event_type, payload FROM events \
                   ORDER BY aggregate_type, aggregate_id, sequence";
        match &testkit::Raw::of(&self.store) {
            testkit::Raw::Postgres(pool) => {
                sqlx::query_as::<_, (String, String, String, Value)>(sql)
                    .fetch_all(pool)
                    .await
                    .expect("read the events")
            }
            testkit::Raw::Sqlite(pool) => sqlx::query_as::<_, (String, String, String, Value)>(sql)
                .fetch_all(pool)
                .await
                .expect("read the events"),
        }
    }

    /// The stored events of type `event_type`, any stream: (aggregate id, payload).
    pub async fn events_of_type(&self, event_type: &str) -> Vec<(String, Value)> {
        self.all_events()
            .await
            .into_iter()
            .filter(|(_, _, t, _)| t == event_type)
            .map(|(_, id, _, payload)| (id, payload))
            .collect()
    }

    /// How many events of `event_type` the stream `aggregate_id` holds.
    pub async fn count_in_stream(&self, aggregate_id: &str, event_type: &str) -> usize {
        self.stream(aggregate_id)
            .await
            .iter()
            .filter(|(t, _)| t == event_type)
            .count()
    }

    /// The stored events of one stream, in order: (type, payload).
    pub async fn stream(&self, aggregate_id: &str) -> Vec<(String, Value)> {
        let sql =
            "SELECT event_type, payload FROM events WHERE aggregate_id = $1 ORDER BY sequence";
        match &testkit::Raw::of(&self.store) {
            testkit::Raw::Postgres(pool) => sqlx::query_as::<_, (String, Value)>(sql)
                .bind(aggregate_id)
                .fetch_all(pool)
                .await
                .expect("read the stream"),
            testkit::Raw::Sqlite(pool) => {
                sqlx::query_as::<_, (String, Value)>(&sql.replace('$', "?"))
                    .bind(aggregate_id)
                    .fetch_all(pool)
                    .await
                    .expect("read the stream")
            }
        }
    }

    /// The metadata of every event of one stream, in order: (type, metadata).
    pub async fn stream_metadata(&self, aggregate_id: &str) -> Vec<(String, Value)> {
        let sql =
            "SELECT event_type, metadata FROM events WHERE aggregate_id = $1 ORDER BY sequence";
        match &testkit::Raw::of(&self.store) {
            testkit::Raw::Postgres(pool) => sqlx::query_as::<_, (String, Value)>(sql)
                .bind(aggregate_id)
                .fetch_all(pool)
                .await
                .expect("read the stream"),
            testkit::Raw::Sqlite(pool) => {
                sqlx::query_as::<_, (String, Value)>(&sql.replace('$', "?"))
                    .bind(aggregate_id)
                    .fetch_all(pool)
                    .await
                    .expect("read the stream")
            }
        }
    }

    /// The newest code issued on `aggregate_id`'s stream (account or challenge), opened from its
    /// sealed copy: what the notifier would send.
    pub async fn latest_code(&self, aggregate_id: &str) -> Option<String> {
        self.stream(aggregate_id)
            .await
            .into_iter()
            .rev()
            .find(|(t, _)| t == "VerificationCodeIssued" || t == "ChallengeIssued")
            .and_then(|(_, payload)| {
                let sealed: Sealed = serde_json::from_value(payload["sealed_code"].clone()).ok()?;
                self.keyring.open(&sealed)
            })
    }

    /// The newest reset token of the account, opened from its sealed copy.
    pub async fn latest_reset_token(&self, account_id: &str) -> Option<String> {
        self.stream(account_id)
            .await
            .into_iter()
            .rev()
            .find(|(t, _)| t == "ResetTokenIssued")
            .and_then(|(_, payload)| {
                let sealed: Sealed =
                    serde_json::from_value(payload["sealed_token"].clone()).ok()?;
                self.keyring.open(&sealed)
            })
    }

    /// The messages the notifier wrote to the outbox (file sink), oldest first.
    pub fn outbox(&self) -> Vec<OutboxLine> {
        OutboxLine::read_all(&gateway::workers::outbox_path(&self.data_dir)).unwrap()
    }

    /// Waits (at most 10 s) for an outbox message to `to` whose subject contains `subject`.
    pub async fn message_to(&self, to: &str, subject: &str) -> OutboxLine {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(found) = self
                .outbox()
                .into_iter()
                .rev()
                .find(|m| m.to == to && m.subject.as_ref().is_some_and(|s| s.contains(subject)))
            {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no message to {to} about {subject:?}; outbox: {:#?}",
                self.outbox()
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    /// The work the application runs after its answers (to add work in a test of shutdown).
    pub fn after_answer(&self) -> &tokio_util::task::TaskTracker {
        &self.after_answer
    }

    /// Waits until the work the application started after its answers so far has ended (a
    /// code sent, a recovery recorded or refused): what it was going to store is stored.
    pub async fn settled(&self) {
        poll("the work after the answers to end", EVENTUALLY, || async {
            self.after_answer.is_empty().then_some(())
        })
        .await;
    }

    /// Stops the application gracefully, as a shutdown signal would.
    pub async fn stop(mut self) {
        self.stop_serving().await;
    }

    /// Stops the application as a shutdown signal would, and keeps the handle (and its
    /// database) for reading what the application stored.
    pub async fn stop_serving(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
