//! The notifier's tables (migration 1002): its fold of each account's contact values, and the
//! delivery log keyed by (source, channel, recipient).
//!
//! A delivery row goes `pending` → `sending` (claimed under a lease, one attempt counted) →
//! `sent`, or back to `pending` with a later `next_attempt_ms` after a transient failure, or
//! `dead` (the dead-letter record) after a permanent one or the last attempt. Only a row in
//! `pending` whose time has come, or in `sending` whose lease ran out (its sender died), is
//! claimed, so two notifier instances never send the same row at once.

use chrono::Utc;
use domain::Channel;
use serde_json::Value;
use sqlx::Row;

use super::plan::{Contacts, Plan, Template};
use crate::db::{sqlite, ReadError, ReadStore};

/// Runs `$body` with `$pool` bound to the backend's pool and `$q` turning a PostgreSQL
/// statement into the backend's spelling.
macro_rules! on_db {
    ($db:expr, $pool:ident, $q:ident => $body:expr) => {
        match $db {
            ReadStore::Postgres($pool) => {
                #[allow(unused)]
                let $q = |s: &str| s.to_owned();
                $body
            }
            ReadStore::Sqlite($pool) => {
                #[allow(unused)]
                let $q = |s: &str| sqlite(s);
                $body
            }
        }
    };
}

/// Milliseconds since the epoch, the scheduling clock of the delivery log.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub async fn load_contacts(
    db: &ReadStore,
    account_id: &str,
) -> Result<Option<Contacts>, ReadError> {
    const SQL: &str = "SELECT last_sequence, contact_mobile, contact_mobile_verified, \
                       contact_email, contact_email_verified \
                       FROM notifier_contacts WHERE account_id = $1";
    Ok(on_db!(db, pool, q => {
        sqlx::query(&q(SQL))
            .bind(account_id)
            .fetch_optional(pool)
            .await?
            .map(|row| Contacts {
                last_sequence: u64::try_from(row.get::<i64, _>(0)).unwrap_or_default(),
                mobile: row
                    .get::<Option<String>, _>(1)
                    .map(|m| (m, row.get::<bool, _>(2))),
                email: row
                    .get::<Option<String>, _>(3)
                    .map(|e| (e, row.get::<bool, _>(4))),
            })
    }))
}

/// Moves `account_id`'s contacts from `expected` (its `last_sequence`, or `None` for an account
/// not seen yet) to `contacts` and records `plan`, in one transaction (one statement when the
/// plan sends nothing). The plan's rows are recorded already claimed until `lease_until_ms`, for
/// the caller to send at once. `None` when another instance moved the contacts first (nothing
/// is written); else whether every row of the plan was new (and so is claimed by the caller).
pub async fn commit_account_plan(
    db: &ReadStore,
    account_id: &str,
    expected: Option<u64>,
    contacts: &Contacts,
    plan: &Plan,
    lease_until_ms: i64,
) -> Result<Option<bool>, ReadError> {
    const INSERT: &str = "INSERT INTO notifier_contacts (account_id, last_sequence, \
        contact_mobile, contact_mobile_verified, contact_email, contact_email_verified, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $6, CURRENT_TIMESTAMP) ON CONFLICT (account_id) DO NOTHING";
    const UPDATE: &str = "UPDATE notifier_contacts SET last_sequence = $2, contact_mobile = $3, \
        contact_mobile_verified = $4, contact_email = $5, contact_email_verified = $6, \
        updated_at = CURRENT_TIMESTAMP WHERE account_id = $1 AND last_sequence = $7";
    let (mobile, mobile_verified) = split(&contacts.mobile);
    let (email, email_verified) = split(&contacts.email);
    let sequence = i64::try_from(contacts.last_sequence).unwrap_or(i64::MAX);
    let expected_sequence = expected.map(|e| i64::try_from(e).unwrap_or(i64::MAX));
    let sql = if expected_sequence.is_some() {
        UPDATE
    } else {
        INSERT
    };
    on_db!(db, pool, q => {
        let sql = q(sql);
        let mut fold = sqlx::query(&sql)
            .bind(account_id)
            .bind(sequence)
            .bind(mobile)
            .bind(mobile_verified)
            .bind(email)
            .bind(email_verified);
        if let Some(expected) = expected_sequence {
            fold = fold.bind(expected);
        }
        if plan.messages.is_empty() {
            // Nothing to send: the fold alone, one statement.
            let moved = fold.execute(pool).await?.rows_affected();
            return Ok((moved == 1).then_some(true));
        }
        let mut tx = pool.begin().await?;
        if fold.execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let mut all_new = true;
        for planned in &plan.messages {
            all_new &= sqlx::query(&q(INSERT_CLAIMED))
                .bind(&plan.source_id)
                .bind(planned.channel.as_str())
                .bind(&planned.recipient)
                .bind(planned.template.as_str())
                .bind(planned.params.to_string())
                .bind(lease_until_ms)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        }
        tx.commit().await?;
        Ok(Some(all_new))
    })
}

fn split(value: &Option<(String, bool)>) -> (Option<&str>, bool) {
    match value {
        Some((v, verified)) => (Some(v.as_str()), *verified),
        None => (None, false),
    }
}

/// A new row, claimed at once by the instance that plans it (one attempt counted).
const INSERT_CLAIMED: &str = "INSERT INTO notification_deliveries \
    (source_id, channel, recipient, template, params, state, attempts, next_attempt_ms, \
     lease_until_ms, created_at) \
    VALUES ($1, $2, $3, $4, $5, 'sending', 1, 0, $6, CURRENT_TIMESTAMP) \
    ON CONFLICT (source_id, channel, recipient) DO NOTHING RETURNING recipient";

/// Records `plan`'s rows claimed until `lease_until_ms` (a recipient already planned for the
/// source is kept as it is). Whether every row was new (and so is claimed by the caller).
pub async fn record_plan(
    db: &ReadStore,
    plan: &Plan,
    lease_until_ms: i64,
) -> Result<bool, ReadError> {
    if plan.messages.is_empty() {
        return Ok(true);
    }
    on_db!(db, pool, q => {
        let mut tx = pool.begin().await?;
        let mut all_new = true;
        for planned in &plan.messages {
            all_new &= sqlx::query(&q(INSERT_CLAIMED))
                .bind(&plan.source_id)
                .bind(planned.channel.as_str())
                .bind(&planned.recipient)
                .bind(planned.template.as_str())
                .bind(planned.params.to_string())
                .bind(lease_until_ms)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        }
        tx.commit().await?;
        Ok(all_new)
    })
}

/// Whether any row was ever planned for `source_id`.
pub async fn is_planned(db: &ReadStore, source_id: &str) -> Result<bool, ReadError> {
    const SQL: &str = "SELECT 1 FROM notification_deliveries WHERE source_id = $1 LIMIT 1";
    Ok(on_db!(db, pool, q => {
        sqlx::query(&q(SQL)).bind(source_id).fetch_optional(pool).await?.is_some()
    }))
}

/// The state of a delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Sending,
    Sent,
    Dead,
}

impl State {
    fn parse(s: &str) -> Self {
        match s {
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "dead" => Self::Dead,
            _ => Self::Pending,
        }
    }
}

/// One row of the delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub source_id: String,
    pub channel: Channel,
    pub recipient: String,
    pub template: Option<Template>,
    pub params: Value,
    pub state: State,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub lease_until_ms: Option<i64>,
}

pub async fn rows_of(db: &ReadStore, source_id: &str) -> Result<Vec<DeliveryRow>, ReadError> {
    const SQL: &str = "SELECT source_id, channel, recipient, template, params, state, attempts, \
                       next_attempt_ms, lease_until_ms FROM notification_deliveries \
                       WHERE source_id = $1 ORDER BY channel, recipient";
    Ok(on_db!(db, pool, q => {
        sqlx::query(&q(SQL))
            .bind(source_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| DeliveryRow {
                source_id: row.get(0),
                channel: if row.get::<String, _>(1) == "sms" { Channel::Sms } else { Channel::Email },
                recipient: row.get(2),
                template: Template::parse(&row.get::<String, _>(3)),
                params: serde_json::from_str(&row.get::<String, _>(4)).unwrap_or(Value::Null),
                state: State::parse(&row.get::<String, _>(5)),
                attempts: u32::try_from(row.get::<i32, _>(6)).unwrap_or_default(),
                next_attempt_ms: row.get(7),
                lease_until_ms: row.get(8),
            })
            .collect()
    }))
}

/// Claims `row` for one attempt until `lease_until_ms`. `false` when it is not claimable (or
/// another instance claimed it first).
pub async fn claim(
    db: &ReadStore,
    row: &DeliveryRow,
    now_ms: i64,
    lease_until_ms: i64,
) -> Result<bool, ReadError> {
    const SQL: &str = "UPDATE notification_deliveries \
        SET state = 'sending', attempts = attempts + 1, lease_until_ms = $4 \
        WHERE source_id = $1 AND channel = $2 AND recipient = $3 AND attempts = $6 \
          AND ((state = 'pending' AND next_attempt_ms <= $5) \
            OR (state = 'sending' AND lease_until_ms < $5))";
    let attempts = i32::try_from(row.attempts).unwrap_or(i32::MAX);
    Ok(on_db!(db, pool, q => {
        sqlx::query(&q(SQL))
            .bind(&row.source_id)
            .bind(row.channel.as_str())
            .bind(&row.recipient)
            .bind(lease_until_ms)
            .bind(now_ms)
            .bind(attempts)
            .execute(pool)
            .await?
            .rows_affected()
            == 1
    }))
}

/// What became of an attempt.
pub enum Attempt<'e> {
    Sent,
    Retry { at_ms: i64, error: &'e str },
    Dead { error: &'e str },
}

pub async fn finish(
    db: &ReadStore,
    row: &DeliveryRow,
    attempt: Attempt<'_>,
) -> Result<(), ReadError> {
    const SENT: &str = "UPDATE notification_deliveries SET state = 'sent', \
        sent_at = CURRENT_TIMESTAMP, lease_until_ms = NULL, last_error = NULL \
        WHERE source_id = $1 AND channel = $2 AND recipient = $3";
    const RETRY: &str = "UPDATE notification_deliveries SET state = 'pending', \
        next_attempt_ms = $4, lease_until_ms = NULL, last_error = $5 \
        WHERE source_id = $1 AND channel = $2 AND recipient = $3";
    const DEAD: &str = "UPDATE notification_deliveries SET state = 'dead', \
        dead_at = CURRENT_TIMESTAMP, lease_until_ms = NULL, last_error = $4 \
        WHERE source_id = $1 AND channel = $2 AND recipient = $3";
    on_db!(db, pool, q => {
        match attempt {
            Attempt::Sent => sqlx::query(&q(SENT))
                .bind(&row.source_id)
                .bind(row.channel.as_str())
                .bind(&row.recipient)
                .execute(pool)
                .await?,
            Attempt::Retry { at_ms, error } => sqlx::query(&q(RETRY))
                .bind(&row.source_id)
                .bind(row.channel.as_str())
                .bind(&row.recipient)
                .bind(at_ms)
                .bind(error.to_owned())
                .execute(pool)
                .await?,
            Attempt::Dead { error } => sqlx::query(&q(DEAD))
                .bind(&row.source_id)
                .bind(row.channel.as_str())
                .bind(&row.recipient)
                .bind(error.to_owned())
                .execute(pool)
                .await?,
        };
    });
    Ok(())
}

/// A message given up on: its key, template, attempts and last error (never its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub source_id: String,
    pub channel: String,
    pub recipient: String,
    pub template: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Every dead letter, oldest first.
pub async fn dead_letters(db: &ReadStore) -> Result<Vec<DeadLetter>, ReadError> {
    const SQL: &str = "SELECT source_id, channel, recipient, template, attempts, last_error \
                       FROM notification_deliveries WHERE state = 'dead' \
                       ORDER BY dead_at, source_id, channel, recipient";
    Ok(on_db!(db, pool, q => {
        sqlx::query(&q(SQL))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| DeadLetter {
                source_id: row.get(0),
                channel: row.get(1),
                recipient: row.get(2),
                template: row.get(3),
                attempts: u32::try_from(row.get::<i32, _>(4)).unwrap_or_default(),
                last_error: row.get(5),
            })
            .collect()
    }))
}

/// How many rows the delivery log holds in each state (`pending`, `sending`, `sent`, `dead`).
pub async fn counts(db: &ReadStore) -> Result<Vec<(String, i64)>, ReadError> {
    const SQL: &str =
        "SELECT state, count(*) FROM notification_deliveries GROUP BY state ORDER BY state";
    Ok(on_db!(db, pool, q => {
        sqlx::query(&q(SQL))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
            .collect()
    }))
}
