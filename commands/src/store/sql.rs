//! The write-side stores whose code is the same in both dialects, written once over the sqlx
//! driver (the read side's `projections::store::sql` pattern): each dialect gives the text of
//! its statements ([`Statements`], in its own spelling) and the little else that differs
//! through [`Dialect`]. The event log itself stays each
//! dialect's own code (`pg/events.rs`, `sqlite/events.rs`): its reads and appends differ in more
//! than spelling.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Row, Type,
};

use super::{to_usize, ResetIndex, StoreError};
use crate::claims::{ClaimKind, ClaimRow, ClaimStore};
use crate::idempotency::{IdempotencyRow, IdempotencyStore, StoredColumns, StoredResponse};
use crate::limits::{LimitStore, RetryAfter, TargetLimit};

/// One dialect's statements, each written in that dialect.
pub(super) struct Statements {
    pub claim_insert: &'static str,
    /// `(owner, held, stale)` of a claim, stale when pending for longer than `$3` seconds.
    pub claim_row: &'static str,
    pub claim_hold: &'static str,
    pub claim_delete: &'static str,
    pub idempotency_prune: &'static str,
    pub idempotency_insert: &'static str,
    pub idempotency_take_over: &'static str,
    pub idempotency_get: &'static str,
    pub idempotency_record: &'static str,
    pub idempotency_forget: &'static str,
    /// `(sent_at, seq)` of the sends to `$1` for `$2` after `$3`, and of the newest send by
    /// `seq` whenever it was; oldest first.
    pub sends_since: &'static str,
    /// Inserts send `$3` (its `seq`) to `$1` for `$2` at `$4` unless that `seq` is taken.
    pub insert_send: &'static str,
    /// Forgets the sends at or before `$1`, except each (target, purpose)'s newest.
    pub prune_sends: &'static str,
    pub newest_send: &'static str,
    pub count_request: &'static str,
    pub prune_request_windows: &'static str,
    pub reset_token_owner: &'static str,
}

/// What a dialect brings besides its statements.
pub(super) trait Dialect: Database {
    const SQL: Statements;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// The write side's stores on one pool of dialect `DB`.
#[derive(Debug, Clone)]
pub(super) struct SqlStore<DB: Database>(pub(super) Pool<DB>);

#[async_trait]
impl<DB> ClaimStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'r> (String, bool, bool): FromRow<'r, DB::Row>,
{
    async fn insert_pending(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::SQL.claim_insert)
            .bind(kind.as_str())
            .bind(value)
            .bind(owner)
            .execute(&self.0)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn claim_row(
        &self,
        kind: ClaimKind,
        value: &str,
        stale_after: Duration,
    ) -> Result<Option<ClaimRow>, StoreError> {
        let row: Option<(String, bool, bool)> = sqlx::query_as(DB::SQL.claim_row)
            .bind(kind.as_str())
            .bind(value)
            .bind(stale_after.as_secs_f64())
            .fetch_optional(&self.0)
            .await?;
        Ok(row.map(|(owner, held, stale)| ClaimRow { owner, held, stale }))
    }

    async fn mark_held(&self, kind: ClaimKind, value: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.claim_hold)
            .bind(kind.as_str())
            .bind(value)
            .bind(owner)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn delete(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
        pending_only: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.claim_delete)
            .bind(kind.as_str())
            .bind(value)
            .bind(owner)
            .bind(pending_only)
            .execute(&self.0)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> IdempotencyStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q String: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> StoredColumns: FromRow<'r, DB::Row>,
{
    async fn prune(&self, scope: &str, before: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.idempotency_prune)
            .bind(scope)
            .bind(before)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn insert(
        &self,
        scope: &str,
        request_digest: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(DB::SQL.idempotency_insert)
            .bind(scope)
            .bind(request_digest)
            .bind(now)
            .bind(until)
            .execute(&self.0)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn take_over(
        &self,
        scope: &str,
        request_digest: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        // Of concurrent retries one wins: the row's write lock makes the others re-check the
        // lease.
        let done = sqlx::query(DB::SQL.idempotency_take_over)
            .bind(scope)
            .bind(request_digest)
            .bind(now)
            .bind(until)
            .execute(&self.0)
            .await?;
        Ok(DB::rows_affected(&done) == 1)
    }

    async fn get(&self, scope: &str) -> Result<Option<IdempotencyRow>, StoreError> {
        let row: Option<StoredColumns> = sqlx::query_as(DB::SQL.idempotency_get)
            .bind(scope)
            .fetch_optional(&self.0)
            .await?;
        Ok(row.map(IdempotencyRow::from_columns))
    }

    async fn record(
        &self,
        scope: &str,
        until: DateTime<Utc>,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.idempotency_record)
            .bind(scope)
            .bind(until)
            .bind(i32::from(response.status))
            .bind(&response.content_type)
            .bind(&response.body.key_id)
            .bind(&response.body.ciphertext)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn forget(&self, scope: &str, until: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.idempotency_forget)
            .bind(scope)
            .bind(until)
            .execute(&self.0)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> LimitStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (Option<DateTime<Utc>>,): FromRow<'r, DB::Row>,
    for<'r> (i32,): FromRow<'r, DB::Row>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'r> (DateTime<Utc>, i64): FromRow<'r, DB::Row>,
{
    async fn admit_send(
        &self,
        target: &str,
        purpose: &str,
        limit: TargetLimit,
        now: DateTime<Utc>,
    ) -> Result<Result<(), RetryAfter>, StoreError> {
        // Optimistic, as the event log is: the sends of one (target, purpose) are numbered, the
        // decision is made on what was read, and the insert claims the next number. When another
        // admission claimed it first, the insert does nothing and the decision is made again on
        // what that one wrote. Two round trips and no lock; exact because the number is unique.
        let day_ago = now - chrono::Duration::days(1);
        // Each lost race is a send admitted by someone else: the limit refuses after at most
        // `per_day` of them, so this bound is never reached by honest contention.
        for _ in 0..=limit.per_day.max(1) {
            let sends: Vec<(DateTime<Utc>, i64)> = sqlx::query_as(DB::SQL.sends_since)
                .bind(target)
                .bind(purpose)
                .bind(day_ago)
                .fetch_all(&self.0)
                .await?;
            let newest = sends.iter().map(|(_, seq)| *seq).max().unwrap_or(0);
            let times: Vec<DateTime<Utc>> = (sends.into_iter())
                .filter_map(|(at, _)| (at > day_ago).then_some(at))
                .collect();
            if let Err(retry) = limit.admits(&times, now) {
                return Ok(Err(retry));
            }
            let done = sqlx::query(DB::SQL.insert_send)
                .bind(target)
                .bind(purpose)
                .bind(newest + 1)
                .bind(now)
                .execute(&self.0)
                .await?;
            if DB::rows_affected(&done) == 1 {
                return Ok(Ok(()));
            }
        }
        Ok(Err(RetryAfter(Duration::from_secs(1))))
    }

    async fn prune_sends(&self, before: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.prune_sends)
            .bind(before)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn newest_send(
        &self,
        target: &str,
        purpose: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let (newest,): (Option<DateTime<Utc>>,) = sqlx::query_as(DB::SQL.newest_send)
            .bind(target)
            .bind(purpose)
            .fetch_one(&self.0)
            .await?;
        Ok(newest)
    }

    async fn count_request(
        &self,
        client_ip: &str,
        route: &str,
        window: i64,
    ) -> Result<i64, StoreError> {
        let (count,): (i32,) = sqlx::query_as(DB::SQL.count_request)
            .bind(client_ip)
            .bind(route)
            .bind(window)
            .fetch_one(&self.0)
            .await?;
        Ok(i64::from(count))
    }

    async fn prune_request_windows(&self, window: i64) -> Result<(), StoreError> {
        sqlx::query(DB::SQL.prune_request_windows)
            .bind(window)
            .execute(&self.0)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl<DB> ResetIndex for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    async fn reset_token_owner(&self, digest_hex: &str) -> Result<Option<String>, StoreError> {
        let owner: Option<(String,)> = sqlx::query_as(DB::SQL.reset_token_owner)
            .bind(digest_hex)
            .fetch_optional(&self.0)
            .await?;
        Ok(owner.map(|(owner,)| owner))
    }
}

/// A row of one stream (`sequence, event_type, event_version, payload, metadata`) as cqrs-es's
/// `SerializedEvent`, in either dialect.
pub(super) fn serialized<R>(
    aggregate_type: &str,
    aggregate_id: &str,
    row: &R,
) -> Result<SerializedEvent, sqlx::Error>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> serde_json::Value: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(SerializedEvent::new(
        aggregate_id.to_owned(),
        to_usize(row.try_get("sequence")?),
        aggregate_type.to_owned(),
        row.try_get("event_type")?,
        row.try_get("event_version")?,
        row.try_get("payload")?,
        row.try_get("metadata")?,
    ))
}
