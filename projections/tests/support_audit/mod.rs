//! Harness of the audit tests (`audit_*.rs`): the write side's store as the audit port (as
//! `gateway/src/audit.rs` wires it), a fresh migrated database per test on either backend, real
//! commands through `commands::Executor` with a clock the test moves, and plain SQL to tamper
//! with the `events` table afterwards.
//!
//! Nothing is mocked: every test runs against the real PostgreSQL or a real SQLite file.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::{Actor, CommandContext, Committed, Executor, Store};
use domain::account::{AccountEvent, Profile, RecoveryMethod};
use domain::password::{Password, PasswordPolicy};
use domain::stored::RecordedEvent;
use domain::values::{AccountId, Email, Mobile, ServerIp, VerificationCode};
use domain::{
    Account, AccountCommand, Clock, DomainServices, PasswordCheck, PasswordHash, SessionId,
};
use projections::audit::Audit;
use projections::ReadStore;
use serde_json::Value;
use testkit::TestDatabase;

#[allow(unused_imports)] // each test crate uses some of them
pub use testkit::{on_both_backends, t0, TestClock};

/// The password policy's reminder age used throughout.
pub const REMINDER_DAYS: i64 = 90;

/// The write side's store as the audit port: the adapter `accountd` itself runs.
pub use gateway::audit::StoreAuditLog;

// ---------------------------------------------------------------------------------------------
// The environment of one test.

pub struct Env {
    pub db: TestDatabase,
    pub audit: Audit<StoreAuditLog>,
    pub executor: Executor,
    pub keyring: Keyring,
    pub clock: Arc<TestClock>,
    hasher: PasswordHasher,
    sessions: Mutex<u32>,
}

impl Env {
    /// `db` with the read side migrated, a test clock at [`t0`], and the write side on it.
    pub async fn new(db: TestDatabase) -> Self {
        let read = ReadStore::open(&db.url).await.expect("open the read side");
        let clock = Arc::new(TestClock::new(t0()));
        let keyring = Keyring::new([7; 32], []);
        let services = DomainServices {
            clock: clock.clone(),
            secrets: Arc::new(keyring.clone()),
            password_policy: PasswordPolicy::default(),
        };
        Self {
            audit: Audit::new(
                Arc::new(StoreAuditLog(db.store.clone())),
                read,
                REMINDER_DAYS,
            ),
            executor: Executor::new(db.store.clone(), services),
            keyring,
            clock,
            hasher: PasswordHasher::new(2, 64),
            sessions: Mutex::new(0),
            db,
        }
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db.raw, testkit::Raw::Postgres(_))
    }

    /// A write side of its own (no memo of any stream), as another process would have.
    pub fn other_executor(&self) -> Executor {
        Executor::new(self.store().clone(), self.executor.services().clone())
    }

    /// Runs `command` on `id` as its holder, from a browser; it must commit and not be refused.
    pub async fn exec(&self, id: &AccountId, command: AccountCommand) -> Committed<Account> {
        let committed = self
            .executor
            .execute::<Account>(id.as_str(), command, &request_context(id))
            .await
            .unwrap_or_else(|e| panic!("a command on {id} failed: {e}"));
        assert!(
            domain::account::rejection(&committed.events).is_none(),
            "a command on {id} was refused: {:?}",
            committed.events
        );
        committed
    }

    async fn new_id(&self) -> AccountId {
        let number = self.store().next_account_number().await.expect("an id");
        AccountId::from_number(number).expect("ids are 12 digits")
    }

    pub fn new_session(&self) -> SessionId {
        let mut n = self.sessions.lock().unwrap();
        *n += 1;
        SessionId::new(format!("session-{n}"))
    }

    /// Signs up with a mobile proved by a challenge.
    pub async fn register_by_mobile(&self, n: u32) -> AccountId {
        let id = self.new_id().await;
        self.exec(
            &id,
            AccountCommand::RegisterWithMobile {
                account_id: id.clone(),
                mobile: mobile(n),
            },
        )
        .await;
        id
    }

    /// Signs up by email with `password_hash`; returns the id and the code sent to the email.
    pub async fn register_by_email(
        &self,
        address: &str,
        password_hash: PasswordHash,
    ) -> (AccountId, VerificationCode) {
        let id = self.new_id().await;
        let committed = self
            .exec(
                &id,
                AccountCommand::RegisterWithEmail {
                    account_id: id.clone(),
                    login_email: email(address),
                    password_hash,
                    code_id: format!("signup-{id}"),
                },
            )
            .await;
        (id.clone(), self.code_of(&committed))
    }

    /// A real Argon2id hash of `password`.
    pub async fn hash(&self, password: &str) -> PasswordHash {
        let password =
            Password::parse(password, &PasswordPolicy::default()).expect("a valid test password");
        self.hasher.hash(&password).await.expect("hashing capacity")
    }

    /// The code a command sent, opened from its sealed copy (as the notifier would).
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
            .map(|code| VerificationCode::parse(&code).expect("a six-digit code"))
            .expect("the command sent a code")
    }

    /// A step-up by password (checked as the command layer would have) for a new session.
    pub async fn step_up_by_password(&self, id: &AccountId) -> SessionId {
        let session_id = self.new_session();
        let version = self.account(id).await.password_version();
        self.exec(
            id,
            AccountCommand::ConfirmIdentityWithPassword {
                verification_id: format!("verification-{}", session_id.as_str()),
                session_id: session_id.clone(),
                check: PasswordCheck {
                    against_version: version,
                    matches: true,
                },
            },
        )
        .await;
        session_id
    }

    /// The account as the write side folds it now.
    pub async fn account(&self, id: &AccountId) -> std::sync::Arc<Account> {
        self.executor
            .load::<Account>(id.as_str())
            .await
            .expect("load the account")
            .state
    }

    /// The profile the write side's state shows at the clock's time.
    pub async fn profile_now(&self, id: &AccountId) -> Option<Profile> {
        self.account(id).await.profile(self.now(), REMINDER_DAYS)
    }

    /// A stream of `n` (at least 2) events, each a minute after the one before: registration,
    /// then servers assigned, recovery requests and releases in turn (four event types).
    pub async fn stream_of(&self, mobile_number: u32, n: u32) -> AccountId {
        assert!(n >= 2);
        let id = self.register_by_mobile(mobile_number).await;
        for i in 1..n {
            self.clock.advance(chrono::Duration::minutes(1));
            let server = mobile_number * 1_000 + i;
            let command = match i % 3 {
                1 => AccountCommand::AssignServerIp {
                    instance_id: format!("i-{server}"),
                    ip: server_ip(server),
                },
                2 => AccountCommand::RecordRecoveryRequest {
                    method: RecoveryMethod::Mobile,
                    recovery_id: Some(format!("recovery-{server}")),
                },
                _ => AccountCommand::ReleaseServerIp {
                    instance_id: format!("i-{}", server - 2),
                },
            };
            self.exec(&id, command).await;
        }
        id
    }
}

/// The account holder's context, with the request details a gateway would pass on.
pub fn request_context(id: &AccountId) -> CommandContext {
    CommandContext {
        actor: Actor::Account(id.as_str().to_owned()),
        request_id: Some("req-7f3a".to_owned()),
        ip: Some("203.0.113.9".parse::<IpAddr>().unwrap()),
        user_agent: Some("accountd-tests/1.0".to_owned()),
    }
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("a valid test email")
}

/// A distinct Chinese mobile number for each `n` below 10^8.
pub fn mobile(n: u32) -> Mobile {
    Mobile::parse(&format!("+86139{n:08}")).expect("139 numbers are mobile numbers")
}

/// A distinct unicast address in 10/8 for each `n` below 250^3.
pub fn server_ip(n: u32) -> ServerIp {
    let text = format!("10.{}.{}.{}", n / 62_500 % 250, n / 250 % 250, n % 250 + 1);
    ServerIp::parse(&text).expect("10/8 addresses are unicast")
}

// ---------------------------------------------------------------------------------------------
// The events table, read and tampered with directly.

/// The stored rows of stream `id`, in sequence order, as the database holds them.
pub async fn stored(store: &Store, id: &AccountId) -> Vec<RecordedEvent> {
    store
        .stream_after("Account", id.as_str(), 0, 10_000)
        .await
        .expect("read the stream")
}

/// Runs `sql` (PostgreSQL placeholders) with the stream id as its only parameter.
pub async fn tamper(store: &Store, sql: &str, id: &AccountId) {
    match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query(sql)
            .bind(id.as_str())
            .execute(pool)
            .await
            .map(drop),
        testkit::Raw::Sqlite(pool) => sqlx::query(&sql.replace('$', "?"))
            .bind(id.as_str())
            .execute(pool)
            .await
            .map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs `sql` on the database with no parameter.
pub async fn execute_sql(store: &Store, sql: &str) {
    match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        testkit::Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Overwrites the type, payload and metadata of event `sequence` of stream `id`.
pub async fn set_row(
    store: &Store,
    id: &AccountId,
    sequence: u64,
    event_type: &str,
    payload: &Value,
    metadata: &Value,
) {
    let affected = match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query(
            "UPDATE events SET event_type = $1, payload = $2::text::json, \
                               metadata = $3::text::json \
              WHERE aggregate_id = $4 AND sequence = $5",
        )
        .bind(event_type)
        .bind(payload.to_string())
        .bind(metadata.to_string())
        .bind(id.as_str())
        .bind(sequence as i64)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
        testkit::Raw::Sqlite(pool) => sqlx::query(
            "UPDATE events SET event_type = ?1, payload = ?2, metadata = ?3 \
              WHERE aggregate_id = ?4 AND sequence = ?5",
        )
        .bind(event_type)
        .bind(payload.to_string())
        .bind(metadata.to_string())
        .bind(id.as_str())
        .bind(sequence as i64)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()),
    }
    .expect("tamper with the events table");
    assert_eq!(affected, 1, "one row rewritten");
}

/// Inserts a hand-made row into stream `id`.
pub async fn insert_row(
    store: &Store,
    id: &AccountId,
    sequence: u64,
    event_type: &str,
    payload: &Value,
    metadata: &Value,
) {
    match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata) \
             VALUES ('Account', $1, $2, $3, '1', $4::text::json, $5::text::json)",
        )
        .bind(id.as_str())
        .bind(sequence as i64)
        .bind(event_type)
        .bind(payload.to_string())
        .bind(metadata.to_string())
        .execute(pool)
        .await
        .map(drop),
        testkit::Raw::Sqlite(pool) => sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                 event_version, payload, metadata) \
             VALUES ('Account', ?1, ?2, ?3, '1', ?4, ?5)",
        )
        .bind(id.as_str())
        .bind(sequence as i64)
        .bind(event_type)
        .bind(payload.to_string())
        .bind(metadata.to_string())
        .execute(pool)
        .await
        .map(drop),
    }
    .expect("insert a forged event");
}

// ---------------------------------------------------------------------------------------------
// Generated histories, written as the executor would write them (metadata and chain hashes).

/// Inserts `history` in its order with per-event metadata (event id, `occurred_at` one minute
/// apart from [`t0`], actor) and each stream's chain hash, as the executor would have.
pub async fn insert_chained(store: &Store, history: &[testkit::sample::SampleEvent]) {
    testkit::sample::insert_chained(store, history, t0())
        .await
        .expect("insert the chained history");
}
