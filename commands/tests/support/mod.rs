//! Shared harness of the `commands` integration tests: a `CommandService` wired as the gateway
//! wires it (a fixed keyring, a small Argon2 pool, an injectable clock), accounts registered
//! without Argon2 work, the stored rows of a stream read back with plain SQL, and a macro that
//! runs one test body on both backends.
//!
//! Every test gets its own fresh database (`TestDatabase::postgres()` / `::sqlite()`); nothing is
//! mocked.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::{Actor, CommandContext, CommandService, Executor, RecordedEvent, Store};
use domain::chain::{self, Link, Verification};
use domain::password::{Password, PasswordPolicy};
use domain::values::{AccountId, Email, Mobile, ServerIp};
use domain::{Account, AccountCommand, Clock, DomainServices, SystemClock};
use serde_json::Value;
use sqlx::Row;

/// Runs each named `async fn name(db: TestDatabase)` on a fresh PostgreSQL database and on a
/// fresh SQLite file, as the tests `name::on_postgres` and `name::on_sqlite`.
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_postgres() {
                super::$test(::commands::testing::TestDatabase::postgres().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn on_sqlite() {
                super::$test(::commands::testing::TestDatabase::sqlite().await).await
            }
        }
    )+};
}

/// How long a poll waits for something that must happen soon before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A password every default policy accepts.
pub const PASSWORD: &str = "Tq7#vLm2!x";

/// 2026-11-26T10:00:00Z: whole seconds, so no timestamp carries a six-digit fraction.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0).unwrap()
}

/// A clock that only moves when the test moves it.
#[derive(Debug)]
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The keyring of every test.
pub fn keyring() -> Keyring {
    Keyring::new([7; 32], [])
}

/// The service on `store` with the wall clock.
pub fn service(store: &Store) -> CommandService {
    service_with_clock(store, Arc::new(SystemClock))
}

/// The service on `store` with the clock given.
pub fn service_with_clock(store: &Store, clock: Arc<dyn Clock>) -> CommandService {
    let keyring = keyring();
    let services = DomainServices {
        clock,
        secrets: Arc::new(keyring.clone()),
        password_policy: PasswordPolicy::default(),
    };
    CommandService::with_services(store.clone(), keyring, PasswordHasher::new(2, 64), services)
}

pub fn password() -> Password {
    Password::parse(PASSWORD, &PasswordPolicy::default()).expect("the test password is valid")
}

pub fn email(address: &str) -> Email {
    Email::parse(address).expect("a valid test email")
}

/// A distinct Chinese mobile number for each `n` below 10^8.
pub fn mobile(n: u32) -> Mobile {
    Mobile::parse(&format!("+86138{n:08}")).expect("138 numbers are mobile numbers")
}

/// A distinct unicast IPv4 address for each `n` below 250^3.
pub fn server_ip(n: u32) -> ServerIp {
    let octet = |x: u32| u8::try_from(x).expect("below 256");
    let ip = Ipv4Addr::new(
        10,
        octet(n / 62_500 % 250),
        octet(n / 250 % 250),
        octet(n % 250 + 1),
    );
    ServerIp::parse(&IpAddr::V4(ip).to_string()).expect("10/8 addresses are unicast")
}

/// The account holder's context, with the request details a gateway would pass on.
pub fn request_context(id: &AccountId) -> CommandContext {
    CommandContext {
        actor: Actor::Account(id.as_str().to_owned()),
        request_id: Some("req-7f3a".to_owned()),
        ip: Some("203.0.113.9".parse().unwrap()),
        user_agent: Some("accountd-tests/1.0".to_owned()),
    }
}

/// The executor of a service on `store` (wall clock).
pub fn executor(store: &Store) -> Executor {
    service(store).executor().clone()
}

/// Registers one account by mobile (no Argon2 work) under a fresh id.
pub async fn register_by_mobile(executor: &Executor, n: u32) -> AccountId {
    let number = executor
        .store()
        .next_account_number()
        .await
        .expect("an account id");
    let id = AccountId::from_number(number).expect("ids are 12 digits");
    executor
        .execute::<Account>(
            id.as_str(),
            AccountCommand::RegisterWithMobile {
                account_id: id.clone(),
                mobile: mobile(n),
            },
            &CommandContext::system(),
        )
        .await
        .expect("registration by mobile commits");
    id
}

/// Registers `count` accounts by mobile.
pub async fn register_many(executor: &Executor, count: u32) -> Vec<AccountId> {
    let mut ids = Vec::with_capacity(count as usize);
    for n in 0..count {
        ids.push(register_by_mobile(executor, n).await);
    }
    ids
}

/// The command recording server `n` (instance `i-n`, IP `server_ip(n)`).
pub fn assign_server(n: u32) -> AccountCommand {
    AccountCommand::AssignServerIp {
        instance_id: instance_id(n),
        ip: server_ip(n),
    }
}

pub fn instance_id(n: u32) -> String {
    format!("i-{n:06}")
}

/// One stored event row, read back with plain SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    /// The payload exactly as the database holds it.
    pub payload_text: String,
    /// The metadata exactly as the database holds it.
    pub metadata_text: String,
}

/// The rows of stream `id`, ordered by sequence, straight from the table.
pub async fn stream_rows(store: &Store, id: &str) -> Vec<StoredRow> {
    let rows = match store {
        Store::Postgres(pool) => sqlx::query(
            "SELECT sequence, event_type, event_version, payload::text AS payload, \
                    metadata::text AS metadata \
               FROM events WHERE aggregate_id = $1 ORDER BY sequence",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("read the stream")
        .into_iter()
        .map(|r| row_parts(&r))
        .collect::<Vec<_>>(),
        Store::Sqlite(pool) => sqlx::query(
            "SELECT sequence, event_type, event_version, payload, metadata \
               FROM events WHERE aggregate_id = ?1 ORDER BY sequence",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("read the stream")
        .into_iter()
        .map(|r| row_parts(&r))
        .collect::<Vec<_>>(),
    };
    rows.into_iter()
        .map(
            |(sequence, event_type, event_version, payload_text, metadata_text)| StoredRow {
                sequence: u64::try_from(sequence).expect("sequences are positive"),
                event_type,
                event_version,
                payload: serde_json::from_str(&payload_text).expect("payload is JSON"),
                metadata: serde_json::from_str(&metadata_text).expect("metadata is JSON"),
                payload_text,
                metadata_text,
            },
        )
        .collect()
}

type Parts = (i64, String, String, String, String);

fn row_parts<R>(row: &R) -> Parts
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    (
        row.get("sequence"),
        row.get("event_type"),
        row.get("event_version"),
        row.get("payload"),
        row.get("metadata"),
    )
}

/// Every row of the events table as (aggregate id, sequence).
pub async fn all_keys(store: &Store) -> Vec<(String, u64)> {
    let rows: Vec<(String, i64)> = match store {
        Store::Postgres(pool) => sqlx::query_as("SELECT aggregate_id, sequence FROM events")
            .fetch_all(pool)
            .await
            .expect("read the table"),
        Store::Sqlite(pool) => sqlx::query_as("SELECT aggregate_id, sequence FROM events")
            .fetch_all(pool)
            .await
            .expect("read the table"),
    };
    rows.into_iter()
        .map(|(id, seq)| (id, u64::try_from(seq).expect("sequences are positive")))
        .collect()
}

/// How many events the table holds.
pub async fn event_count(store: &Store) -> usize {
    let n: i64 = match store {
        Store::Postgres(pool) => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count events"),
        Store::Sqlite(pool) => sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
            .expect("count events"),
    };
    usize::try_from(n).expect("a count is positive")
}

/// Verifies the hash chain of rows in the order given.
pub fn verify_rows(rows: &[StoredRow]) -> Verification {
    chain::verify(rows.iter().map(|r| Link {
        sequence: r.sequence,
        event_type: &r.event_type,
        event_version: &r.event_version,
        payload: &r.payload,
        metadata: &r.metadata,
    }))
}

/// Verifies the hash chain of recorded events in the order given.
pub fn verify_recorded(events: &[&RecordedEvent]) -> Verification {
    chain::verify(events.iter().map(|e| Link {
        sequence: e.sequence,
        event_type: &e.event_type,
        event_version: &e.event_version,
        payload: &e.payload,
        metadata: &e.metadata,
    }))
}

/// Reads the whole log with `read_after`, polling (with a deadline) until the reader has
/// returned as many events as the table holds: on PostgreSQL an unrelated transaction of the
/// cluster may hold the horizon back for a moment.
pub async fn read_whole_log(store: &Store) -> Vec<RecordedEvent> {
    let expected = event_count(store).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut checkpoint = commands::Checkpoint::default();
    let mut read = Vec::new();
    loop {
        let batch = store.read_after(checkpoint, 100).await.expect("read_after");
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
