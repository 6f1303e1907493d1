//! The stores whose code is the same in both dialects, written once over the sqlx driver: each
//! dialect gives the text of its statements ([`Statements`], in its own spelling) and the
//! pieces that really differ (batch load and save, the instance lock), through [`Dialect`].

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::stored::Checkpoint;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use super::{to_u64, Lease, ProfileStore, ProjectionStore, ProjectionTx, RelayStore, SessionStore};
use crate::db::ReadError;
use crate::profile::{ProfileRow, ServerRow, Tables};
use crate::sessions::{ActiveSession, Session};

/// One dialect's statements, each written in that dialect.
pub(crate) struct Statements {
    pub profile: &'static str,
    pub servers_of: &'static str,
    pub accounts_by_mobile: &'static str,
    pub accounts_by_login_email: &'static str,
    pub accounts_by_server_ip: &'static str,
    pub account_by_reset_token: &'static str,
    pub passwords_changed_before: &'static str,
    pub profile_sequence: &'static str,
    pub create_session: &'static str,
    pub active_session: &'static str,
    pub live_sessions: &'static str,
    pub touch_session: &'static str,
    pub revoke_own_session: &'static str,
    pub revoke_session: &'static str,
    pub revoke_sessions_but: &'static str,
    /// One session (revoked or not) of account $1 from ip $2 and user agent $3 (a missing
    /// value matches only a missing one) created or last used at or after $4.
    pub seen_client: &'static str,
    pub checkpoint: &'static str,
    pub ensure_checkpoint: &'static str,
    /// Takes the checkpoint row's lock for the rest of the transaction.
    pub hold_checkpoint: &'static str,
    pub move_checkpoint: &'static str,
    pub set_checkpoint: &'static str,
    pub relay_checkpoint: &'static str,
    pub ensure_relay_checkpoint: &'static str,
    /// Moves a relay checkpoint ($2, $3) only from where it is expected ($4, $5).
    pub move_relay_checkpoint: &'static str,
    pub reset_relay_checkpoint: &'static str,
    /// Drops and recreates the `*_rebuild` copies, empty.
    pub create_copies: &'static [&'static str],
}

/// What a dialect brings besides its statements.
#[async_trait]
pub(crate) trait Dialect: Database {
    const SQL: Statements;

    /// The rows (with servers) of `ids` in `tables`.
    async fn load(
        conn: &mut Self::Connection,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError>;

    /// Upserts `rows` in `tables` and rewrites their servers.
    async fn save(
        conn: &mut Self::Connection,
        tables: Tables,
        rows: &[&ProfileRow],
    ) -> Result<(), ReadError>;

    /// Waits until this process is the one active instance `name` (see
    /// [`ProjectionStore::exclusive`]).
    async fn exclusive(pool: &Pool<Self>, name: &str) -> Lease;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

/// The read side's stores on one pool of dialect `DB`.
#[derive(Debug)]
pub(crate) struct SqlStore<DB: Database>(pub(crate) Pool<DB>);

/// One projection transaction of dialect `DB`.
struct SqlTx<DB: Database>(Transaction<'static, DB>);

#[async_trait]
impl<DB> ProfileStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> ProfileRow: FromRow<'r, DB::Row>,
    for<'r> ServerRow: FromRow<'r, DB::Row>,
{
    async fn profile_row(&self, account_id: &str) -> Result<Option<ProfileRow>, ReadError> {
        let found: Option<ProfileRow> = sqlx::query_as(DB::SQL.profile)
            .bind(account_id)
            .fetch_optional(&self.0)
            .await?;
        let Some(mut row) = found else {
            return Ok(None);
        };
        row.servers = sqlx::query_as(DB::SQL.servers_of)
            .bind(account_id)
            .fetch_all(&self.0)
            .await?;
        Ok(Some(row))
    }

    async fn accounts_by_mobile(&self, e164: &str) -> Result<Vec<String>, ReadError> {
        self.ids(DB::SQL.accounts_by_mobile, e164).await
    }

    async fn accounts_by_login_email(&self, email: &str) -> Result<Vec<String>, ReadError> {
        self.ids(DB::SQL.accounts_by_login_email, email).await
    }

    async fn accounts_by_server_ip(&self, ip: &str) -> Result<Vec<String>, ReadError> {
        self.ids(DB::SQL.accounts_by_server_ip, ip).await
    }

    async fn account_by_reset_token(&self, digest_hex: &str) -> Result<Option<String>, ReadError> {
        let ids = self.ids(DB::SQL.account_by_reset_token, digest_hex).await?;
        Ok(ids.into_iter().next())
    }

    async fn passwords_changed_before(
        &self,
        changed_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, ReadError> {
        Ok(sqlx::query_scalar(DB::SQL.passwords_changed_before)
            .bind(changed_before)
            .bind(limit)
            .fetch_all(&self.0)
            .await?)
    }

    async fn profile_sequence(&self, account_id: &str) -> Result<u64, ReadError> {
        let found: Option<i64> = sqlx::query_scalar(DB::SQL.profile_sequence)
            .bind(account_id)
            .fetch_optional(&self.0)
            .await?;
        Ok(found.map_or(0, to_u64))
    }
}

impl<DB> SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    /// The account ids `sql` selects for `value`.
    async fn ids(&self, sql: &'static str, value: &str) -> Result<Vec<String>, ReadError> {
        Ok(sqlx::query_scalar(sql)
            .bind(value)
            .fetch_all(&self.0)
            .await?)
    }
}

#[async_trait]
impl<DB> SessionStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> DateTime<Utc>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> Session: FromRow<'r, DB::Row>,
    for<'r> ActiveSession: FromRow<'r, DB::Row>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    async fn create(&self, token_hash: &str, session: &Session) -> Result<(), ReadError> {
        sqlx::query(DB::SQL.create_session)
            .bind(token_hash)
            .bind(session.session_id.as_str())
            .bind(session.account_id.as_str())
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.last_used_at)
            .bind(session.ip.as_deref())
            .bind(session.user_agent.as_deref())
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn live(&self, account_id: &str, now: DateTime<Utc>) -> Result<Vec<Session>, ReadError> {
        Ok(sqlx::query_as(DB::SQL.live_sessions)
            .bind(account_id)
            .bind(now)
            .fetch_all(&self.0)
            .await?)
    }

    async fn touch(
        &self,
        session_id: &str,
        now: DateTime<Utc>,
        unless_after: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        sqlx::query(DB::SQL.touch_session)
            .bind(session_id)
            .bind(now)
            .bind(unless_after)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn revoke_own(
        &self,
        account_id: &str,
        session_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, ReadError> {
        let done = sqlx::query(DB::SQL.revoke_own_session)
            .bind(session_id)
            .bind(account_id)
            .bind(now)
            .execute(&self.0)
            .await?;
        Ok(DB::rows_affected(&done) > 0)
    }

    async fn active(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ActiveSession>, ReadError> {
        Ok(sqlx::query_as(DB::SQL.active_session)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.0)
            .await?)
    }

    async fn revoke(&self, session_id: &str, now: DateTime<Utc>) -> Result<(), ReadError> {
        sqlx::query(DB::SQL.revoke_session)
            .bind(session_id)
            .bind(now)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn revoke_all_but(
        &self,
        account_id: &str,
        keep: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ReadError> {
        sqlx::query(DB::SQL.revoke_sessions_but)
            .bind(account_id)
            .bind(now)
            .bind(keep)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn seen_client(
        &self,
        account_id: &str,
        ip: Option<&str>,
        user_agent: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<bool, ReadError> {
        let found: Option<String> = sqlx::query_scalar(DB::SQL.seen_client)
            .bind(account_id)
            .bind(ip)
            .bind(user_agent)
            .bind(since)
            .fetch_optional(&self.0)
            .await?;
        Ok(found.is_some())
    }
}

#[async_trait]
impl<DB> ProjectionStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
{
    async fn checkpoint(&self, name: &str) -> Result<Checkpoint, ReadError> {
        named_checkpoint(&self.0, DB::SQL.checkpoint, name).await
    }

    async fn begin(&self) -> Result<Box<dyn ProjectionTx>, ReadError> {
        Ok(Box::new(SqlTx(self.0.begin().await?)))
    }

    async fn begin_holding(
        &self,
        name: &str,
    ) -> Result<(Box<dyn ProjectionTx>, Checkpoint), ReadError> {
        // The row must exist to be held.
        sqlx::query(DB::SQL.ensure_checkpoint)
            .bind(name)
            .execute(&self.0)
            .await?;
        let mut tx = self.0.begin().await?;
        sqlx::query(DB::SQL.hold_checkpoint)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let (tx_id, position): (i64, i64) = sqlx::query_as(DB::SQL.checkpoint)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        Ok((Box::new(SqlTx(tx)), Checkpoint { tx_id, position }))
    }

    async fn create_copies(&self) -> Result<(), ReadError> {
        for sql in DB::SQL.create_copies {
            sqlx::query(sql).execute(&self.0).await?;
        }
        Ok(())
    }

    async fn exclusive(&self, name: &str) -> Lease {
        DB::exclusive(&self.0, name).await
    }
}

#[async_trait]
impl<DB> ProjectionTx for SqlTx<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, DB> + Type<DB>,
{
    async fn move_checkpoint(
        &mut self,
        name: &str,
        expected: Option<Checkpoint>,
        to: Checkpoint,
        last_recorded_at: Option<DateTime<Utc>>,
    ) -> Result<bool, ReadError> {
        let any = expected.is_none();
        let expected = expected.unwrap_or_default();
        ensure_named_checkpoint(&mut *self.0, DB::SQL.ensure_checkpoint, name, expected).await?;
        let moved = sqlx::query(DB::SQL.move_checkpoint)
            .bind(name)
            .bind(to.tx_id)
            .bind(to.position)
            .bind(last_recorded_at)
            .bind(any)
            .bind(expected.tx_id)
            .bind(expected.position)
            .execute(&mut *self.0)
            .await?;
        Ok(DB::rows_affected(&moved) == 1)
    }

    async fn load(
        &mut self,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError> {
        DB::load(&mut self.0, tables, ids).await
    }

    async fn save(&mut self, tables: Tables, rows: &[&ProfileRow]) -> Result<(), ReadError> {
        DB::save(&mut self.0, tables, rows).await
    }

    async fn swap_in_copies(&mut self, name: &str, to: Checkpoint) -> Result<(), ReadError> {
        for sql in super::SWAP_COPIES {
            sqlx::query(sql).execute(&mut *self.0).await?;
        }
        sqlx::query(DB::SQL.set_checkpoint)
            .bind(name)
            .bind(to.tx_id)
            .bind(to.position)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), ReadError> {
        Ok(self.0.commit().await?)
    }
}

#[async_trait]
impl<DB> RelayStore for SqlStore<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
{
    async fn relay_checkpoint(&self, name: &str) -> Result<Checkpoint, ReadError> {
        named_checkpoint(&self.0, DB::SQL.relay_checkpoint, name).await
    }

    async fn move_relay_checkpoint(
        &self,
        name: &str,
        from: Checkpoint,
        to: Checkpoint,
    ) -> Result<bool, ReadError> {
        ensure_named_checkpoint(&self.0, DB::SQL.ensure_relay_checkpoint, name, from).await?;
        let result = sqlx::query(DB::SQL.move_relay_checkpoint)
            .bind(name)
            .bind(to.tx_id)
            .bind(to.position)
            .bind(from.tx_id)
            .bind(from.position)
            .execute(&self.0)
            .await?;
        Ok(DB::rows_affected(&result) == 1)
    }

    async fn reset_relay_checkpoint(&self, name: &str) -> Result<(), ReadError> {
        sqlx::query(DB::SQL.reset_relay_checkpoint)
            .bind(name)
            .execute(&self.0)
            .await?;
        Ok(())
    }

    async fn exclusive(&self, name: &str) -> Lease {
        DB::exclusive(&self.0, name).await
    }
}

/// The checkpoint named `name` that `sql` selects as `(tx_id, position)`; the start of the log
/// when there is none. Projections, the relay and the notifier's planner keep theirs alike.
pub(crate) async fn named_checkpoint<DB>(
    pool: &Pool<DB>,
    sql: &str,
    name: &str,
) -> Result<Checkpoint, ReadError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (i64, i64): FromRow<'r, DB::Row>,
{
    let row: Option<(i64, i64)> = sqlx::query_as(sql).bind(name).fetch_optional(pool).await?;
    Ok(
        row.map_or_else(Checkpoint::default, |(tx_id, position)| Checkpoint {
            tx_id,
            position,
        }),
    )
}

/// Makes the checkpoint row `name` (with `sql`, an insert that ignores a conflict) before a move
/// that starts at `from`, when that is the log's start. A missing row reads as the start
/// ([`named_checkpoint`]), so only a move from there can find it missing: every other batch
/// saves the statement.
pub(crate) async fn ensure_named_checkpoint<'e, DB, E>(
    executor: E,
    sql: &str,
    name: &str,
    from: Checkpoint,
) -> Result<(), ReadError>
where
    DB: Database,
    E: Executor<'e, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    if from == Checkpoint::default() {
        sqlx::query(sql).bind(name).execute(executor).await?;
    }
    Ok(())
}
