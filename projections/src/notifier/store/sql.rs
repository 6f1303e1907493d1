//! The parts of [`super::NotifyStore`] whose code is the same in both dialects, written once
//! over the sqlx driver: each dialect gives its statements ([`Statements`], in its own spelling)
//! and calls these; what really differs (claiming due rows, batches as arrays or as statements
//! in one transaction, the instance lock) stays in `pg.rs` and `sqlite.rs`.

use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Pool, Row, Type,
};

use super::{json, to_i64, DeadLetter, DeadPlan, DeliveryRow, PendingRequest, State};
use crate::db::ReadError;

/// The columns of a delivery row, in the order [`row`] reads them; `attempts` as a 64-bit
/// integer in both dialects.
pub(super) const ROW: &str = "source_id, channel, recipient, template, params, state, \
    CAST(attempts AS BIGINT) AS attempts, next_attempt_ms, last_error";

/// One dialect's statements, each written in that dialect.
pub(super) struct Statements {
    pub checkpoint: &'static str,
    pub ensure_checkpoint: &'static str,
    pub reset_checkpoint: &'static str,
    pub stored_sequence: &'static str,
    pub pending_requests: &'static str,
    pub record_request: &'static str,
    pub insert_dead: &'static str,
    pub rows_of: &'static str,
}

/// The statements of both dialects that are spelled alike (no parameters).
const RESET_CONTACTS: &str = "DELETE FROM notifier_contacts";
const DEAD_LETTERS: &str = "SELECT source_id, channel, recipient, template, \
    CAST(attempts AS BIGINT), last_error FROM notification_deliveries WHERE state = 'dead' \
    ORDER BY dead_at, source_id, channel, recipient";
const COUNTS: &str =
    "SELECT state, count(*) FROM notification_deliveries GROUP BY state ORDER BY state";

/// A delivery row selected as [`ROW`].
pub(super) fn row<R>(r: &R) -> Result<DeliveryRow, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(DeliveryRow {
        source_id: r.try_get(0)?,
        channel: r.try_get(1)?,
        recipient: r.try_get(2)?,
        template: r.try_get(3)?,
        params: json(&r.try_get::<String, _>(4)?),
        state: State::parse(&r.try_get::<String, _>(5)?),
        attempts: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or_default(),
        next_attempt_ms: r.try_get(7)?,
        last_error: r.try_get(8)?,
    })
}

pub(super) async fn reset<DB>(
    pool: &Pool<DB>,
    sql: &Statements,
    name: &str,
) -> Result<(), ReadError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let mut tx = pool.begin().await?;
    sqlx::query(sql.reset_checkpoint)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(RESET_CONTACTS).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn stored_sequence<DB>(
    pool: &Pool<DB>,
    sql: &Statements,
    account_id: &str,
) -> Result<u64, ReadError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (Option<i64>,): FromRow<'r, DB::Row>,
{
    let (sequence,): (Option<i64>,) = sqlx::query_as(sql.stored_sequence)
        .bind(account_id)
        .fetch_one(pool)
        .await?;
    Ok(sequence.map_or(0, |s| u64::try_from(s).unwrap_or_default()))
}

pub(super) async fn pending_requests<DB>(
    pool: &Pool<DB>,
    sql: &Statements,
    limit: i64,
) -> Result<Vec<PendingRequest>, ReadError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (String, String, Option<i64>, String): FromRow<'r, DB::Row>,
{
    let rows: Vec<(String, String, Option<i64>, String)> = sqlx::query_as(sql.pending_requests)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(source_id, account_id, after_sequence, params)| PendingRequest {
                source_id,
                account_id,
                after_sequence: after_sequence.map(|s| u64::try_from(s).unwrap_or_default()),
                params: json(&params),
            },
        )
        .collect())
}

pub(super) async fn record_request<DB>(
    pool: &Pool<DB>,
    sql: &Statements,
    request: &PendingRequest,
) -> Result<(), ReadError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    // A request whose rows exist was resolved before: it is not kept again.
    sqlx::query(sql.record_request)
        .bind(request.source_id.as_str())
        .bind(request.account_id.as_str())
        .bind(request.after_sequence.map(to_i64))
        .bind(request.params.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Records `dead` as a dead letter, through `executor` (the pool, or a planner's transaction).
pub(super) async fn insert_dead<'e, DB, E>(
    executor: E,
    sql: &Statements,
    dead: &DeadPlan,
    now_ms: i64,
) -> Result<(), ReadError>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(sql.insert_dead)
        .bind(dead.source_id.as_str())
        .bind(dead.template.as_str())
        .bind(now_ms)
        .bind(dead.reason.as_str())
        .execute(executor)
        .await?;
    Ok(())
}

pub(super) async fn rows_of<DB>(
    pool: &Pool<DB>,
    sql: &Statements,
    source_id: &str,
) -> Result<Vec<DeliveryRow>, ReadError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Option<String>: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
{
    let rows = sqlx::query(sql.rows_of)
        .bind(source_id)
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

pub(super) async fn dead_letters<DB>(pool: &Pool<DB>) -> Result<Vec<DeadLetter>, ReadError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (String, String, String, String, i64, Option<String>): FromRow<'r, DB::Row>,
{
    let rows: Vec<(String, String, String, String, i64, Option<String>)> =
        sqlx::query_as(DEAD_LETTERS).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(
            |(source_id, channel, recipient, template, attempts, last_error)| DeadLetter {
                source_id,
                channel,
                recipient,
                template,
                attempts: u32::try_from(attempts).unwrap_or_default(),
                last_error,
            },
        )
        .collect())
}

pub(super) async fn counts<DB>(pool: &Pool<DB>) -> Result<Vec<(String, i64)>, ReadError>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'r> (String, i64): FromRow<'r, DB::Row>,
{
    Ok(sqlx::query_as(COUNTS).fetch_all(pool).await?)
}
