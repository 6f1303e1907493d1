//! Harness of the bus, relay and notifier tests: the real write side (`CommandService`) on a
//! fresh PostgreSQL database or SQLite file, the real NATS JetStream at 127.0.0.1:4222 under a
//! stream prefix of the test's own (or a private `nats-server` the test starts and stops), an
//! in-process SMTP server and SMS gateway that record what they receive, and the relay and
//! notifier running as the binary runs them.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::{Actor, CommandContext, CommandService, Committed, Store};
use domain::account::{AccountEvent, AccountSummary, VerificationMethod};
use domain::password::PasswordPolicy;
use domain::stored::Checkpoint;
use domain::values::{AccountId, Email, Mobile, VerificationCode};
use domain::{
    Account, AccountCommand, Challenge, ChallengeCommand, Channel, CodePurpose, DomainServices,
    PasswordCheck, PasswordHash, ReuseCheck, SessionId,
};
use projections::bus::{Bus, BusConfig, StreamKind};
use projections::notifier::senders::{EmailSender, Senders, SmsGateway, SmsSender, SmtpSender};
use projections::notifier::store::NotifyStore;
use projections::notifier::{Notifier, NotifierSettings, Planner};
use projections::relay::Relay;
use projections::ReadStore;
use serde_json::Value;
use testkit::TestDatabase;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use gateway::wiring::StoreLog;
pub use gateway::workers::KeyringUnsealer;
pub use testkit::TestClock;

/// How long a poll waits for something that must happen soon.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The public URL the tests configure, with a trailing slash the notifier must ignore.
pub const PUBLIC_URL: &str = "https://console.example.test/";

pub fn nats_url() -> String {
    std::env::var("ACCOUNTD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A stream prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{}_", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("a valid test email")
}

pub fn mobile(n: u32) -> Mobile {
    Mobile::parse(&format!("+86139{n:08}")).expect("139 numbers are mobile numbers")
}

fn dummy_hash(n: u64) -> PasswordHash {
    PasswordHash::from_phc(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$dGVzdHNhbHQ${n:043}"
    ))
}

/// The write side, a read store and a bus on one test's own database.
pub struct World {
    pub db: TestDatabase,
    pub read: ReadStore,
    pub service: CommandService,
    pub keyring: Keyring,
    pub clock: Arc<TestClock>,
    pub bus: Bus,
    sessions: Mutex<u32>,
}

impl World {
    /// On `db`, with `bus`; the clock starts at the current time (whole seconds).
    pub async fn new(db: TestDatabase, bus: Bus) -> Self {
        let read = ReadStore::open(&db.url).await.expect("open the read store");
        let keyring = Keyring::new([9; 32], []);
        let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
        let clock = Arc::new(TestClock::new(now));
        let services = DomainServices {
            clock: clock.clone(),
            secrets: Arc::new(keyring.clone()),
            password_policy: PasswordPolicy::default(),
        };
        let service = CommandService::with_services(
            db.store.clone(),
            keyring.clone(),
            PasswordHasher::new(1, 4),
            services,
        );
        Self {
            db,
            read,
            service,
            keyring,
            clock,
            bus,
            sessions: Mutex::new(0),
        }
    }

    /// On `db` with NATS under a fresh prefix.
    pub async fn with_nats(db: TestDatabase) -> Self {
        let bus = Bus::connect(BusConfig {
            url: Some(nats_url()),
            prefix: unique_prefix(),
            replicas: 1,
        })
        .await
        .expect("NATS with JetStream is required at ACCOUNTD_TEST_NATS_URL (127.0.0.1:4222)");
        Self::new(db, bus).await
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub fn relay(&self) -> Relay<StoreLog> {
        Relay::new(
            Arc::new(StoreLog(self.db.store.clone())),
            self.read.clone(),
            self.bus.clone(),
        )
    }

    /// The notifier's tables.
    pub fn notify_store(&self) -> Arc<dyn NotifyStore> {
        self.read.notifier()
    }

    /// A planner that wakes `planned`.
    pub fn planner(&self, planned: Arc<Notify>) -> Planner<StoreLog> {
        Planner::new(
            Arc::new(StoreLog(self.db.store.clone())),
            self.notify_store(),
            planned,
        )
    }

    /// A notification worker woken by `planned`.
    pub fn notifier(
        &self,
        senders: Senders,
        settings: NotifierSettings,
        planned: Arc<Notify>,
    ) -> Notifier {
        Notifier::new(
            self.notify_store(),
            self.bus.clone(),
            Arc::new(KeyringUnsealer(self.keyring.clone())),
            senders,
            settings,
            planned,
        )
    }

    /// Starts the relay and a notifier (planner and worker) in the background.
    pub fn start(&self, senders: Senders, settings: NotifierSettings) -> Running {
        let mut running = self.start_notifier(senders, settings);
        let relay = self.relay();
        let commits = self.service.executor().commits();
        let stopping = running.stop.subscribe();
        running.tasks.push(tokio::spawn(async move {
            relay.run(commits, stopped(stopping)).await
        }));
        running
    }

    /// Starts a notifier (planner and worker) alone, as `accountd notify` runs it.
    pub fn start_notifier(&self, senders: Senders, settings: NotifierSettings) -> Running {
        let (stop, stopping) = watch::channel(false);
        let planned = Arc::new(Notify::new());
        let planner = self.planner(planned.clone());
        let commits = self.service.executor().commits();
        let planning = tokio::spawn({
            let stopping = stopping.clone();
            async move { planner.run(commits, stopped(stopping)).await }
        });
        let worker = Arc::new(self.notifier(senders, settings, planned));
        Running {
            stop,
            tasks: vec![planning, tokio::spawn(worker.run(stopped(stopping)))],
        }
    }

    // -- commands -------------------------------------------------------------------------

    pub async fn execute(&self, id: &AccountId, command: AccountCommand) -> Committed<Account> {
        let context = CommandContext::of(Actor::Account(id.as_str().to_owned()));
        self.service
            .execute(id, command, &context)
            .await
            .unwrap_or_else(|e| panic!("a command on {id} failed: {e}"))
    }

    async fn new_id(&self) -> AccountId {
        let number = self.store().next_account_number().await.expect("an id");
        AccountId::from_number(number).expect("12 digits")
    }

    fn new_session(&self) -> SessionId {
        let mut n = self.sessions.lock().unwrap();
        *n += 1;
        SessionId::new(format!("session-{n}"))
    }

    /// The code a command sent, opened from its sealed copy.
    pub fn code_of(&self, committed: &Committed<Account>) -> VerificationCode {
        committed
            .events
            .iter()
            .find_map(|e| match e {
                AccountEvent::VerificationCodeIssued { sealed_code, .. } => {
                    self.keyring.open(sealed_code)
                }
                _ => None,
            })
            .map(|c| VerificationCode::parse(&c).unwrap())
            .expect("the command sent a code")
    }

    /// Sign-up by email; returns the account and the code sent to the login email.
    pub async fn sign_up_by_email(&self, address: &str) -> (AccountId, VerificationCode) {
        let id = self.new_id().await;
        let committed = self
            .execute(
                &id,
                AccountCommand::RegisterWithEmail {
                    account_id: id.clone(),
                    login_email: email(address),
                    password_hash: dummy_hash(id.number()),
                    code_id: format!("signup-{id}"),
                },
            )
            .await;
        let code = self.code_of(&committed);
        (id, code)
    }

    /// Sign-up with a mobile (proved by a challenge beforehand).
    pub async fn sign_up_by_mobile(&self, mobile: &Mobile) -> AccountId {
        let id = self.new_id().await;
        self.execute(
            &id,
            AccountCommand::RegisterWithMobile {
                account_id: id.clone(),
                mobile: mobile.clone(),
            },
        )
        .await;
        id
    }

    pub async fn account(&self, id: &AccountId) -> std::sync::Arc<Account> {
        self.service.account(id).await.unwrap().state
    }

    /// A step-up: by password when the account has one, else by SMS to the recovery mobile.
    pub async fn step_up(&self, id: &AccountId) -> SessionId {
        let session_id = self.new_session();
        let verification_id = format!("v-{}", session_id.as_str());
        let account = self.account(id).await;
        if account.password.is_some() {
            self.execute(
                id,
                AccountCommand::ConfirmIdentityWithPassword {
                    verification_id,
                    session_id: session_id.clone(),
                    check: PasswordCheck {
                        against_version: account.password_version(),
                        matches: true,
                    },
                },
            )
            .await;
        } else {
            let issued = self
                .execute(
                    id,
                    AccountCommand::StartIdentityVerification {
                        verification_id: verification_id.clone(),
                        method: VerificationMethod::Sms,
                        session_id: session_id.clone(),
                    },
                )
                .await;
            let code = self.code_of(&issued);
            self.execute(
                id,
                AccountCommand::ConfirmIdentityWithCode {
                    verification_id,
                    session_id: session_id.clone(),
                    code,
                },
            )
            .await;
        }
        session_id
    }

    pub async fn verify_contact_email(&self, id: &AccountId, code: VerificationCode) {
        self.execute(
            id,
            AccountCommand::VerifyContact {
                channel: Channel::Email,
                code,
            },
        )
        .await;
    }

    /// Changes the contact mobile; returns the code sent to it.
    pub async fn change_contact_mobile(&self, id: &AccountId, to: &Mobile) -> VerificationCode {
        let session_id = self.step_up(id).await;
        let committed = self
            .execute(
                id,
                AccountCommand::ChangeContactMobile {
                    session_id,
                    mobile: to.clone(),
                    code_id: format!("contact-{id}-{to}"),
                },
            )
            .await;
        self.code_of(&committed)
    }

    pub async fn verify_contact_mobile(&self, id: &AccountId, code: VerificationCode) {
        self.execute(
            id,
            AccountCommand::VerifyContact {
                channel: Channel::Sms,
                code,
            },
        )
        .await;
    }

    /// Makes `to` the recovery mobile (request, then confirmation with the code sent to it).
    pub async fn change_recovery_mobile(&self, id: &AccountId, to: &Mobile) -> VerificationCode {
        let session_id = self.step_up(id).await;
        let requested = self
            .execute(
                id,
                AccountCommand::RequestRecoveryMobileChange {
                    session_id,
                    mobile: to.clone(),
                    code_id: format!("recovery-{id}-{to}"),
                },
            )
            .await;
        let code = self.code_of(&requested);
        self.execute(
            id,
            AccountCommand::ConfirmRecoveryChange {
                channel: Channel::Sms,
                code: code.clone(),
            },
        )
        .await;
        code
    }

    pub async fn change_password(&self, id: &AccountId, n: u64) {
        let session_id = self.step_up(id).await;
        let version = self.account(id).await.password_version();
        self.execute(
            id,
            AccountCommand::ChangePassword {
                session_id,
                current: PasswordCheck {
                    against_version: version,
                    matches: true,
                },
                reuse: ReuseCheck {
                    against_version: version,
                    reused: false,
                },
                new_hash: dummy_hash(n),
            },
        )
        .await;
    }

    /// Issues a reset token; returns it in clear (opened from the sealed copy).
    pub async fn issue_reset_token(&self, id: &AccountId) -> String {
        let committed = self.execute(id, AccountCommand::IssueResetToken).await;
        committed
            .events
            .iter()
            .find_map(|e| match e {
                AccountEvent::ResetTokenIssued { sealed_token, .. } => {
                    self.keyring.open(sealed_token)
                }
                _ => None,
            })
            .expect("a reset token")
    }

    /// Completes a reset of an account without a verified recovery channel.
    pub async fn reset_password(&self, id: &AccountId, token: &str, n: u64) {
        use domain::Secrets;
        let version = self.account(id).await.password_version();
        self.execute(
            id,
            AccountCommand::CompleteReset {
                token_digest: self.keyring.token_digest(token),
                reuse: ReuseCheck {
                    against_version: version,
                    reused: false,
                },
                new_hash: dummy_hash(n),
                code: None,
            },
        )
        .await;
    }

    /// Binds `address` as login email (with a password) to an account signed up by mobile;
    /// returns the code sent to it.
    pub async fn bind_login_email(&self, id: &AccountId, address: &str) -> VerificationCode {
        let session_id = self.step_up(id).await;
        let requested = self
            .execute(
                id,
                AccountCommand::RequestLoginEmailBinding {
                    session_id,
                    email: email(address),
                    password_hash: Some(dummy_hash(id.number() + 7)),
                    code_id: format!("login-email-{id}"),
                },
            )
            .await;
        let code = self.code_of(&requested);
        self.execute(
            id,
            AccountCommand::ConfirmLoginEmailBinding { code: code.clone() },
        )
        .await;
        code
    }

    pub async fn record_account_info(
        &self,
        id: &AccountId,
        message_id: &str,
        to: &Mobile,
        accounts: Vec<AccountSummary>,
    ) {
        self.execute(
            id,
            AccountCommand::RecordAccountInfoSent {
                message_id: message_id.to_owned(),
                mobile: to.clone(),
                accounts,
            },
        )
        .await;
    }

    /// Issues a sign-in challenge to `to`; returns its code.
    pub async fn issue_challenge(&self, challenge_id: &str, to: &Mobile) -> String {
        let committed = self
            .service
            .executor()
            .execute::<Challenge>(
                challenge_id,
                ChallengeCommand::Issue {
                    challenge_id: challenge_id.to_owned(),
                    mobile: to.clone(),
                    purpose: CodePurpose::Login,
                },
                &CommandContext::system(),
            )
            .await
            .expect("issue a challenge");
        committed
            .events
            .iter()
            .find_map(|e| match e {
                domain::ChallengeEvent::ChallengeIssued { sealed_code, .. } => {
                    self.keyring.open(sealed_code)
                }
                _ => None,
            })
            .expect("a challenge code")
    }

    /// How many events of `aggregate_type` the store holds.
    pub async fn count_events(&self, aggregate_type: &str) -> usize {
        let sql = "SELECT count(*) FROM events WHERE aggregate_type = $1";
        let n: i64 = match &testkit::Raw::of(self.store()) {
            testkit::Raw::Postgres(pool) => sqlx::query_scalar(sql)
                .bind(aggregate_type)
                .fetch_one(pool)
                .await
                .unwrap(),
            testkit::Raw::Sqlite(pool) => sqlx::query_scalar(&sql.replace('$', "?"))
                .bind(aggregate_type)
                .fetch_one(pool)
                .await
                .unwrap(),
        };
        n as usize
    }

    /// The checkpoint of the last event of the log.
    pub async fn log_head(&self) -> Checkpoint {
        let head: Option<(i64, i64)> = match &testkit::Raw::of(self.store()) {
            testkit::Raw::Postgres(pool) => sqlx::query_as(
                "SELECT tx_id::text::bigint, position FROM events \
                  ORDER BY tx_id DESC, position DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await
            .unwrap(),
            testkit::Raw::Sqlite(pool) => {
                sqlx::query_as("SELECT 0, rowid FROM events ORDER BY rowid DESC LIMIT 1")
                    .fetch_optional(pool)
                    .await
                    .unwrap()
            }
        };
        head.map(|(tx_id, position)| Checkpoint { tx_id, position })
            .unwrap_or_default()
    }

    /// Steps `relay` until its checkpoint is the last event of the log.
    pub async fn relay_all(&self, relay: &Relay<StoreLog>) {
        let head = self.log_head().await;
        eventually("the relay to reach the head of the log", || async {
            relay.catch_up().await.expect("relay");
            relay.checkpoint().await.unwrap() >= head
        })
        .await;
    }

    /// Removes this test's streams from the shared NATS server.
    pub async fn clean_up(&self) {
        let _ = self.bus.delete_streams().await;
    }
}

/// Background relay / notifier of a test.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops them and waits until they have.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("a worker stops in time")
                .expect("a worker does not panic");
        }
    }
}

pub async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Settings with fast retries, for tests.
pub fn fast_settings() -> NotifierSettings {
    NotifierSettings {
        public_url: PUBLIC_URL.to_owned(),
        max_attempts: 3,
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        lease: Duration::from_millis(900),
        poll: Duration::from_millis(20),
        ..NotifierSettings::default()
    }
}

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// -- what was sent ---------------------------------------------------------------------------

/// A message as a receiver got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub channel: Channel,
    pub to: String,
    /// Email only.
    pub subject: Option<String>,
    pub text: String,
    /// The delivery id it carried: `Message-ID` (email), `Idempotency-Key` (SMS), or the file
    /// sink's `delivery_id`.
    pub delivery_id: Option<String>,
}

impl Received {
    /// Whether it is a verification-code message.
    pub fn is_code(&self) -> bool {
        self.text.contains("verification code is")
    }
}

/// Everything sent, from whichever receivers a test uses.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    pub fn push(&self, message: Received) {
        self.0.lock().unwrap().push(message);
    }

    pub fn all(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    pub fn to(&self, recipient: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|m| m.to == recipient)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Waits until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) {
        eventually(&format!("{n} messages (have {})", self.len()), || async {
            self.len() >= n
        })
        .await;
    }

    /// Waits a moment longer and checks nothing more arrived than `n`.
    pub async fn settle_at(&self, n: usize) {
        self.wait_for(n).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let all = self.all();
        assert_eq!(all.len(), n, "more messages than expected: {all:#?}");
    }
}

/// An SMTP server that accepts every message and records it (plain, no TLS, no auth).
pub struct SmtpSink {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start(inbox: Inbox) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(smtp_session(socket, inbox.clone()));
            }
        });
        Self { addr, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }
}

async fn smtp_session(socket: tokio::net::TcpStream, inbox: Inbox) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
    let mut recipients = Vec::new();
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let verb = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if verb.starts_with("MAIL FROM") {
            recipients.clear();
            b"250 OK\r\n"
        } else if verb.starts_with("RCPT TO") {
            let to = line.trim_end()[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned();
            recipients.push(to);
            b"250 OK\r\n"
        } else if verb == "DATA" {
            let _ = write.write_all(b"354 go ahead\r\n").await;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                match lines.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if l == ".\r\n" || l == ".\n" {
                    break;
                }
                data.push_str(
                    l.strip_prefix('.')
                        .filter(|_| l.starts_with(".."))
                        .unwrap_or(&l),
                );
            }
            let (subject, text, message_id) = parse_email(&data);
            for to in recipients.drain(..) {
                inbox.push(Received {
                    channel: Channel::Email,
                    to,
                    subject: Some(subject.clone()),
                    text: text.clone(),
                    delivery_id: message_id.clone(),
                });
            }
            b"250 queued\r\n"
        } else if verb == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The subject and the decoded plain-text body of a simple email.
fn parse_email(data: &str) -> (String, String, Option<String>) {
    let (head, body) = data.split_once("\r\n\r\n").unwrap_or((data, ""));
    let message_id = head
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .map(|id| {
            id.trim_matches(['<', '>'])
                .trim_end_matches("@accountd")
                .to_owned()
        });
    let subject = head
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned();
    let quoted_printable = head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable");
    let text = if quoted_printable {
        decode_quoted_printable(body)
    } else {
        body.to_owned()
    };
    (subject, text.trim_end().replace("\r\n", "\n"), message_id)
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() + 1 {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..(i + 3).min(joined.len())], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An SMS gateway receiving `POST {"to","text"}`; it can answer 503 to the first requests.
pub struct SmsSink {
    pub addr: SocketAddr,
    failures_left: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for SmsSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct SmsState {
    inbox: Inbox,
    failures_left: Arc<AtomicUsize>,
}

impl SmsSink {
    pub async fn start(inbox: Inbox) -> Self {
        let failures_left = Arc::new(AtomicUsize::new(0));
        let state = SmsState {
            inbox,
            failures_left: failures_left.clone(),
        };
        let app = Router::new()
            .route("/sms", post(receive_sms))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            failures_left,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// The next `n` requests answer 503 (and deliver nothing).
    pub fn fail_next(&self, n: usize) {
        self.failures_left.store(n, Ordering::SeqCst);
    }
}

async fn receive_sms(
    State(state): State<SmsState>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let failing = state
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let (Some(to), Some(text)) = (body["to"].as_str(), body["text"].as_str()) else {
        return StatusCode::BAD_REQUEST;
    };
    state.inbox.push(Received {
        channel: Channel::Sms,
        to: to.to_owned(),
        subject: None,
        text: text.to_owned(),
        delivery_id: headers
            .get("Idempotency-Key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    StatusCode::ACCEPTED
}

/// SMTP to `smtp` and SMS to `sms`.
pub fn network_senders(smtp: &SmtpSink, sms: &SmsSink) -> Senders {
    Senders {
        email: EmailSender::Smtp(SmtpSender::new(&smtp.url(), "no-reply@accountd.test").unwrap()),
        sms: SmsSender::Http(SmsGateway::new(&sms.url()).unwrap()),
    }
}

/// The file sink's lines in `dir`.
pub fn outbox(dir: &Path) -> Vec<Received> {
    std::fs::read_to_string(dir.join("outbox.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("one JSON object per line");
            assert!(v["sent_at"].is_string(), "every line has sent_at: {line}");
            Received {
                channel: if v["channel"] == "sms" {
                    Channel::Sms
                } else {
                    Channel::Email
                },
                to: v["to"].as_str().unwrap().to_owned(),
                subject: v["subject"].as_str().map(str::to_owned),
                text: v["text"].as_str().unwrap().to_owned(),
                delivery_id: v["delivery_id"].as_str().map(str::to_owned),
            }
        })
        .collect()
}

/// Every message read from a stream (through a throwaway durable consumer), acked.
pub async fn read_stream(
    bus: &Bus,
    kind: StreamKind,
    expected: usize,
) -> Vec<projections::bus::Delivery> {
    use futures::StreamExt;
    let name = format!("reader{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let consumer = bus.consumer(kind, &name).await.expect("a reader consumer");
    let mut deliveries = consumer.deliveries().await.expect("deliveries");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while got.len() < expected {
        let next = tokio::time::timeout_at(deadline, deliveries.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {expected} messages on {kind:?}", got.len()));
        let delivery = next.expect("the stream goes on").expect("a delivery");
        delivery.ack().await.expect("ack");
        got.push(delivery);
    }
    // Nothing more.
    if let Ok(Some(Ok(extra))) =
        tokio::time::timeout(Duration::from_millis(500), deliveries.next()).await
    {
        panic!("an unexpected extra message on {kind:?}: {}", extra.subject);
    }
    drop(deliveries);
    bus.delete_consumer(kind, &name).await.ok();
    got
}

/// Asserts SPEC §2's content rules over everything sent: only code messages hold a run of
/// exactly six digits; no message holds a password hash or a sealed value.
pub fn assert_no_leaks(messages: &[Received]) {
    for m in messages {
        let text = format!("{} {}", m.subject.clone().unwrap_or_default(), m.text);
        assert!(!text.contains("$argon2"), "a password hash in {m:?}");
        assert!(!text.contains("ciphertext"), "a sealed value in {m:?}");
        if !m.is_code() {
            // The tokens of reset and protection links are random: look at the text without them.
            let without_link: String = text
                .split_whitespace()
                .filter(|w| {
                    !w.contains("reset-password?token=") && !w.contains("secure-account?token=")
                })
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                !projections::bus::has_six_digit_run(&without_link),
                "six digits in a row outside a code message: {m:?}"
            );
        }
    }
}

/// The six-digit runs of a text.
pub fn six_digit_runs(text: &str) -> Vec<String> {
    let mut runs = VecDeque::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if current.len() == 6 {
                runs.push_back(current.clone());
            }
            current.clear();
        }
    }
    runs.into_iter().collect()
}
