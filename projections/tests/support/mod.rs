//! Shared harness of the `projections` integration tests: the write side's store as the read
//! side's event log (as the `accountd` binary wires it), a fresh migrated database per test on
//! either backend, generated histories bulk-inserted into the `events` table, real commands run
//! through the executor, and a dump of the whole read model for equality checks.
//!
//! Nothing is mocked: every test runs against the real PostgreSQL or a real SQLite file.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::{Actor, CommandContext, CommandService, Committed, Store};
use domain::account::{AccountEvent, VerificationMethod};
use domain::password::PasswordPolicy;
use domain::stored::{to_payload, Checkpoint, RecordedEvent};
use domain::values::{AccountId, Email, Mobile, ServerIp, VerificationCode};
use domain::{
    Account, AccountCommand, Channel, Clock, DomainServices, PasswordCheck, PasswordHash,
    SessionId, SystemClock,
};
use projections::profile::{ProfileRow, ServerRow};
use projections::{EventLog, Projector, ReadError, ReadStore};
use serde_json::Value;
use testkit::sample::SampleEvent;
use testkit::TestDatabase;

pub use gateway::wiring::StoreLog;
#[allow(unused_imports)] // each test crate uses some of them
pub use testkit::{on_both_backends, t0, TestClock};

/// How long a poll waits for something that must happen soon before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The first account id.
pub const FIRST_ID: &str = "100000000001";

// ---------------------------------------------------------------------------------------------
// Wiring: the write side's store as the read side's log (as gateway/src/wiring.rs does).

/// A test's database with both sides migrated.
pub struct Env {
    pub db: TestDatabase,
    pub read: ReadStore,
    pub log: Arc<StoreLog>,
}

impl Env {
    /// Migrates the read side on `db` (the write side is migrated by `TestDatabase`).
    pub async fn new(db: TestDatabase) -> Self {
        let read = ReadStore::open(&db.url).await.expect("open the read store");
        let log = Arc::new(StoreLog(db.store.clone()));
        Self { db, read, log }
    }

    /// A second fresh database of the same backend, migrated.
    pub async fn sibling(&self) -> Env {
        Env::new(match self.db.raw {
            testkit::Raw::Postgres(_) => TestDatabase::postgres().await,
            testkit::Raw::Sqlite(_) => TestDatabase::sqlite().await,
        })
        .await
    }

    pub fn store(&self) -> &Store {
        &self.db.store
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db.raw, testkit::Raw::Postgres(_))
    }

    pub fn projector(&self) -> Projector<StoreLog> {
        Projector::new(self.log.clone(), self.read.clone())
    }

    /// Catches `projector` up to the last event of the table (see [`settle`]).
    pub async fn settle(&self, projector: &Projector<StoreLog>) {
        settle(projector, self.store()).await;
    }

    /// A fresh projector caught up to the last event of the table.
    pub async fn project(&self) {
        self.settle(&self.projector()).await;
    }

    /// The stored checkpoint of the profile projection.
    pub async fn checkpoint(&self) -> Checkpoint {
        self.projector()
            .checkpoint()
            .await
            .expect("read the checkpoint")
    }
}

// ---------------------------------------------------------------------------------------------
// The log: bulk inserts, copies, its head.

/// One row of the `events` table.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

impl EventRow {
    pub fn of_sample(sample: &SampleEvent) -> Self {
        Self {
            aggregate_type: "Account".to_owned(),
            aggregate_id: sample.aggregate_id.clone(),
            sequence: sample.sequence,
            event_type: sample.event.type_name().to_owned(),
            event_version: "1".to_owned(),
            payload: to_payload(&sample.event).expect("events serialize"),
            metadata: Value::Object(Default::default()),
        }
    }

    pub fn of_recorded(recorded: &RecordedEvent) -> Self {
        Self {
            aggregate_type: recorded.aggregate_type.clone(),
            aggregate_id: recorded.aggregate_id.clone(),
            sequence: recorded.sequence,
            event_type: recorded.event_type.clone(),
            event_version: recorded.event_version.clone(),
            payload: recorded.payload.clone(),
            metadata: recorded.metadata.clone(),
        }
    }
}

/// Inserts a generated history into the `events` table directly, in its order.
pub async fn insert_history(store: &Store, history: &[SampleEvent]) {
    let rows: Vec<EventRow> = history.iter().map(EventRow::of_sample).collect();
    insert_rows(store, &rows).await;
}

/// Inserts `rows` in their order: on PostgreSQL in chunks of 5,000 (one statement and one
/// transaction each), on SQLite in one transaction of multi-row inserts.
pub async fn insert_rows(store: &Store, rows: &[EventRow]) {
    match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => {
            for chunk in rows.chunks(5_000) {
                let column = |f: fn(&EventRow) -> String| chunk.iter().map(f).collect::<Vec<_>>();
                sqlx::query(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                         event_version, payload, metadata) \
                     SELECT at, id, seq, ty, ver, p::json, m::json \
                       FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
                                   $6::text[], $7::text[]) \
                            WITH ORDINALITY AS u(at, id, seq, ty, ver, p, m, n) \
                      ORDER BY n",
                )
                .bind(column(|r| r.aggregate_type.clone()))
                .bind(column(|r| r.aggregate_id.clone()))
                .bind(chunk.iter().map(|r| r.sequence as i64).collect::<Vec<_>>())
                .bind(column(|r| r.event_type.clone()))
                .bind(column(|r| r.event_version.clone()))
                .bind(column(|r| r.payload.to_string()))
                .bind(column(|r| r.metadata.to_string()))
                .execute(pool)
                .await
                .expect("bulk insert events");
            }
        }
        testkit::Raw::Sqlite(pool) => {
            const ROWS_PER_STATEMENT: usize = 400; // 7 parameters each, far below SQLite's limit
            let mut tx = pool.begin().await.expect("begin");
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let sql = format!(
                    "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                                         event_version, payload, metadata) VALUES {values}"
                );
                let mut query = sqlx::query(&sql);
                for r in chunk {
                    query = query
                        .bind(r.aggregate_type.clone())
                        .bind(r.aggregate_id.clone())
                        .bind(r.sequence as i64)
                        .bind(r.event_type.clone())
                        .bind(r.event_version.clone())
                        .bind(r.payload.to_string())
                        .bind(r.metadata.to_string());
                }
                query.execute(&mut *tx).await.expect("bulk insert events");
            }
            tx.commit().await.expect("commit the bulk insert");
        }
    }
}

/// How many events the table holds.
pub async fn event_count(store: &Store) -> usize {
    let n: i64 = match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count events"),
        testkit::Raw::Sqlite(pool) => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count events"),
    };
    usize::try_from(n).expect("a count is positive")
}

/// The checkpoint of the last committed event of the table (the default when it is empty).
pub async fn log_head(store: &Store) -> Checkpoint {
    let head: Option<(i64, i64)> = match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query_as(
            "SELECT tx_id::text::bigint, position FROM events \
              ORDER BY tx_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(pool)
        .await
        .expect("read the head of the log"),
        testkit::Raw::Sqlite(pool) => {
            sqlx::query_as("SELECT 0, rowid FROM events ORDER BY rowid DESC LIMIT 1")
                .fetch_optional(pool)
                .await
                .expect("read the head of the log")
        }
    };
    head.map(|(tx_id, position)| Checkpoint { tx_id, position })
        .unwrap_or_default()
}

/// Reads the whole log in order, polling (with a deadline) until the reader has returned every
/// row of the table: on PostgreSQL an unrelated transaction of the cluster may hold the reader's
/// horizon back for a moment.
pub async fn read_whole_log(store: &Store) -> Vec<RecordedEvent> {
    let expected = event_count(store).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut checkpoint = Checkpoint::default();
    let mut read = Vec::with_capacity(expected);
    loop {
        let batch = store
            .read_after(checkpoint, 5_000)
            .await
            .expect("read_after");
        if let Some(last) = batch.last() {
            checkpoint = last.checkpoint;
        }
        let empty = batch.is_empty();
        read.extend(batch);
        if read.len() >= expected {
            return read;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reader returned {} of {expected} events before the deadline",
            read.len()
        );
        if empty {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Copies the whole log of `from` into `to`, in commit order (for a clean projection of the
/// same log in another database).
pub async fn copy_log(from: &Store, to: &Store) {
    let rows: Vec<EventRow> = read_whole_log(from)
        .await
        .iter()
        .map(EventRow::of_recorded)
        .collect();
    insert_rows(to, &rows).await;
}

/// Catches `projector` up until its checkpoint is the last event of the table.
///
/// `catch_up` stops when the log returns nothing; on PostgreSQL that may happen before the
/// last event while another transaction anywhere in the cluster (another test's) holds the
/// reader's horizon back. So this polls, with a deadline.
pub async fn settle(projector: &Projector<impl EventLog>, store: &Store) {
    let head = log_head(store).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        projector.catch_up().await.expect("catch up");
        let at = projector.checkpoint().await.expect("read the checkpoint");
        if at >= head {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the projector stayed at {at:?}, before the head {head:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Steps `projector` until it reads nothing, retrying a batch another instance committed first.
pub async fn step_until_idle(projector: &Projector<StoreLog>) -> (usize, usize) {
    let (mut applied, mut moved) = (0, 0);
    loop {
        match projector.step().await {
            Ok(0) => return (applied, moved),
            Ok(n) => applied += n,
            Err(ReadError::CheckpointMoved(_)) => moved += 1,
            Err(e) => panic!("a projector step failed: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The read model, whole.

/// Every row of `profiles` (without servers) and of `servers`, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    pub profiles: Vec<ProfileRow>,
    pub servers: Vec<ServerRow>,
}

impl Dump {
    /// The first difference, for a readable failure.
    pub fn first_difference(&self, other: &Dump) -> Option<String> {
        if self.profiles.len() != other.profiles.len() {
            return Some(format!(
                "{} profiles against {}",
                self.profiles.len(),
                other.profiles.len()
            ));
        }
        if let Some((a, b)) = self
            .profiles
            .iter()
            .zip(&other.profiles)
            .find(|(a, b)| a != b)
        {
            return Some(format!("profile\n  {a:?}\nagainst\n  {b:?}"));
        }
        if self.servers != other.servers {
            return Some(format!(
                "servers ({} rows against {})",
                self.servers.len(),
                other.servers.len()
            ));
        }
        None
    }
}

/// Asserts two dumps are equal, showing the first difference.
#[track_caller]
pub fn assert_same_state(actual: &Dump, expected: &Dump, what: &str) {
    if let Some(difference) = actual.first_difference(expected) {
        panic!("{what}: the read models differ: {difference}");
    }
}

/// The whole profile read model, read through the database's own pool.
pub async fn dump(store: &Store) -> Dump {
    const PROFILES: &str = "SELECT * FROM profiles ORDER BY account_id";
    const SERVERS: &str = "SELECT * FROM servers ORDER BY account_id, instance_id";
    match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => Dump {
            profiles: sqlx::query_as(PROFILES).fetch_all(pool).await.unwrap(),
            servers: sqlx::query_as(SERVERS).fetch_all(pool).await.unwrap(),
        },
        testkit::Raw::Sqlite(pool) => Dump {
            profiles: sqlx::query_as(PROFILES).fetch_all(pool).await.unwrap(),
            servers: sqlx::query_as(SERVERS).fetch_all(pool).await.unwrap(),
        },
    }
}

/// Runs one statement on the database (tests that move checkpoints or rows by hand).
pub async fn execute_sql(store: &Store, sql: &str) {
    match &testkit::Raw::of(store) {
        testkit::Raw::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        testkit::Raw::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

// ---------------------------------------------------------------------------------------------
// Real commands through the write side.

pub fn keyring() -> Keyring {
    Keyring::new([7; 32], [])
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("a valid test email")
}

/// A distinct Chinese mobile number for each `n` below 10^8.
pub fn mobile(n: u32) -> Mobile {
    Mobile::parse(&format!("+86138{n:08}")).expect("138 numbers are mobile numbers")
}

pub fn server_ip(text: &str) -> ServerIp {
    ServerIp::parse(text).expect("a unicast test address")
}

/// A stand-in Argon2 PHC string: these tests never verify it (checks are given as
/// `PasswordCheck`s, as the command layer would compute them).
pub fn dummy_hash(n: u32) -> PasswordHash {
    PasswordHash::from_phc(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$dGVzdHNhbHQ${n:043}"
    ))
}

/// The write side as the gateway runs it (no claims: tests pick distinct values themselves).
pub struct Writer {
    pub service: CommandService,
    pub clock: Arc<dyn Clock>,
    sessions: Mutex<u32>,
}

impl Writer {
    pub fn new(store: &Store, clock: Arc<dyn Clock>) -> Self {
        let keyring = keyring();
        let services = DomainServices {
            clock: clock.clone(),
            secrets: Arc::new(keyring.clone()),
            password_policy: PasswordPolicy::default(),
        };
        Self {
            service: CommandService::with_services(
                store.clone(),
                keyring,
                PasswordHasher::new(2, 64),
                services,
            ),
            clock,
            sessions: Mutex::new(0),
        }
    }

    /// With the wall clock.
    pub fn with_wall_clock(store: &Store) -> Self {
        Self::new(store, Arc::new(SystemClock))
    }

    pub fn executor(&self) -> &commands::Executor {
        self.service.executor()
    }

    /// The account as the write side folds it now.
    pub async fn account(&self, id: &AccountId) -> std::sync::Arc<Account> {
        self.service
            .account(id)
            .await
            .expect("load the account")
            .state
    }

    /// Runs `command` on account `id`; it must commit (a recorded refusal fails the test).
    pub async fn execute(&self, id: &AccountId, command: AccountCommand) -> Committed<Account> {
        let context = CommandContext::of(Actor::Account(id.as_str().to_owned()));
        self.service
            .execute(id, command, &context)
            .await
            .unwrap_or_else(|e| panic!("a command on {id} failed: {e}"))
    }

    async fn new_id(&self) -> AccountId {
        let number = self
            .service
            .store()
            .next_account_number()
            .await
            .expect("an account id");
        AccountId::from_number(number).expect("ids are 12 digits")
    }

    fn new_session(&self) -> SessionId {
        let mut n = self.sessions.lock().unwrap();
        *n += 1;
        SessionId::new(format!("session-{n}"))
    }

    /// Signs up by email (a stand-in hash; no Argon2 work).
    pub async fn register_with_email(&self, address: &str) -> AccountId {
        self.register_with_email_code(address).await.0
    }

    /// Signs up by email; also returns the code sent to the new contact email.
    pub async fn register_with_email_code(&self, address: &str) -> (AccountId, VerificationCode) {
        let id = self.new_id().await;
        let registered = self
            .execute(
                &id,
                AccountCommand::RegisterWithEmail {
                    account_id: id.clone(),
                    login_email: email(address),
                    password_hash: dummy_hash(id.number() as u32),
                    code_id: format!("signup-{id}"),
                },
            )
            .await;
        let code = self.code_of(&registered);
        (id, code)
    }

    /// Signs up with a mobile proved by a challenge.
    pub async fn register_with_mobile(&self, mobile: &Mobile) -> AccountId {
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

    /// A step-up by password (as the command layer would have checked it) for a new session.
    pub async fn step_up_by_password(&self, id: &AccountId) -> SessionId {
        let session_id = self.new_session();
        let account = self.account(id).await;
        self.execute(
            id,
            AccountCommand::ConfirmIdentityWithPassword {
                verification_id: format!("verification-{}", session_id.as_str()),
                session_id: session_id.clone(),
                check: PasswordCheck {
                    against_version: account.password_version(),
                    matches: true,
                },
            },
        )
        .await;
        session_id
    }

    /// A step-up by an SMS code to the recovery mobile, for a new session.
    pub async fn step_up_by_sms(&self, id: &AccountId) -> SessionId {
        let session_id = self.new_session();
        let verification_id = format!("verification-{}", session_id.as_str());
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
        session_id
    }

    /// A step-up by whatever the account has: its password, else its recovery mobile.
    pub async fn step_up(&self, id: &AccountId) -> SessionId {
        if self.account(id).await.password.is_some() {
            self.step_up_by_password(id).await
        } else {
            self.step_up_by_sms(id).await
        }
    }

    /// The code a command sent, opened from the sealed copy of its `VerificationCodeIssued`
    /// with the keyring (as the notifier would).
    pub fn code_of(&self, committed: &Committed<Account>) -> VerificationCode {
        committed
            .events
            .iter()
            .find_map(|e| match e {
                AccountEvent::VerificationCodeIssued { sealed_code, .. } => {
                    self.service.keyring().open(sealed_code)
                }
                _ => None,
            })
            .map(|code| VerificationCode::parse(&code).expect("a sealed code is six digits"))
            .expect("the command sent a code")
    }

    /// Asks to make `mobile` the recovery mobile (after a step-up); returns the code sent to it.
    pub async fn request_recovery_mobile(
        &self,
        id: &AccountId,
        mobile: &Mobile,
    ) -> VerificationCode {
        let session_id = self.step_up(id).await;
        let requested = self
            .execute(
                id,
                AccountCommand::RequestRecoveryMobileChange {
                    session_id,
                    mobile: mobile.clone(),
                    code_id: format!("recovery-{id}-{}", mobile.as_str()),
                },
            )
            .await;
        self.code_of(&requested)
    }

    /// Makes `mobile` the recovery mobile: step-up, request, confirmation with the code.
    pub async fn change_recovery_mobile(
        &self,
        id: &AccountId,
        mobile: &Mobile,
    ) -> Committed<Account> {
        let code = self.request_recovery_mobile(id, mobile).await;
        self.execute(
            id,
            AccountCommand::ConfirmRecoveryChange {
                channel: Channel::Sms,
                code,
            },
        )
        .await
    }

    pub async fn assign_server(
        &self,
        id: &AccountId,
        instance_id: &str,
        ip: &str,
    ) -> Committed<Account> {
        self.execute(
            id,
            AccountCommand::AssignServerIp {
                instance_id: instance_id.to_owned(),
                ip: server_ip(ip),
            },
        )
        .await
    }

    pub async fn release_server(&self, id: &AccountId, instance_id: &str) -> Committed<Account> {
        self.execute(
            id,
            AccountCommand::ReleaseServerIp {
                instance_id: instance_id.to_owned(),
            },
        )
        .await
    }

    /// Changes the password after a step-up by password (checks as the command layer gives).
    pub async fn change_password(&self, id: &AccountId, n: u32) -> Committed<Account> {
        let session_id = self.step_up_by_password(id).await;
        let version = self.account(id).await.password_version();
        self.execute(
            id,
            AccountCommand::ChangePassword {
                session_id,
                current: PasswordCheck {
                    against_version: version,
                    matches: true,
                },
                reuse: domain::ReuseCheck {
                    against_version: version,
                    reused: false,
                },
                new_hash: dummy_hash(n),
            },
        )
        .await
    }
}

/// `history` with its account ids moved to another range (`1…` becomes `digit…`), so that it
/// can sit beside accounts the write side numbers from `100000000001`.
pub fn moved_to(history: Vec<SampleEvent>, digit: char) -> Vec<SampleEvent> {
    history
        .into_iter()
        .map(|mut e| {
            e.aggregate_id = format!("{digit}{}", &e.aggregate_id[1..]);
            e
        })
        .collect()
}

/// Runs `projector` (as `Projector::run`, woken by `commits`) in a task of its own while
/// `body` runs; then stops it, waits for it to end, and returns what `body` returned.
pub async fn with_running<T>(
    projector: Arc<Projector<StoreLog>>,
    commits: Arc<tokio::sync::Notify>,
    body: impl Future<Output = T>,
) -> T {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        projector
            .run(commits, async {
                let _ = stopped.await;
            })
            .await;
    });
    let out = body.await;
    let _ = stop.send(());
    running.await.expect("the projector stops cleanly");
    out
}
