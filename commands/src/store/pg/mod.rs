//! The write side's stores on PostgreSQL. Every statement here is PostgreSQL's (`$n`
//! placeholders, `xid8`, `UNNEST`, advisory locks), and each row shape is decoded once.

mod events;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, PgConnection, Postgres};

use super::sql::{Dialect, SqlStore, Statements};
use super::StoreError;

/// The pool size of [`super::Store::open`]: enough for a gateway on a small machine.
pub const MAX_CONNECTIONS: u32 = 32;

/// The write side's stores on one PostgreSQL pool.
pub(super) type Pg = SqlStore<Postgres>;

impl Dialect for Postgres {
    const SQL: Statements = Statements {
        claim_insert: "INSERT INTO claims (kind, value, owner, state) \
             VALUES ($1, $2, $3, 'pending') ON CONFLICT (kind, value) DO NOTHING",
        claim_row: "SELECT owner, state = 'held' AS held, \
                    claimed_at < now() - make_interval(secs => $3) AS stale \
               FROM claims WHERE kind = $1 AND value = $2",
        claim_hold: "UPDATE claims SET state = 'held' \
             WHERE kind = $1 AND value = $2 AND owner = $3",
        claim_delete: "DELETE FROM claims WHERE kind = $1 AND value = $2 AND owner = $3 \
               AND (NOT $4 OR state = 'pending')",
        idempotency_prune: "DELETE FROM idempotency_records \
             WHERE scope_digest = $1 AND created_at < $2",
        idempotency_insert: "INSERT INTO idempotency_records \
             (scope_digest, request_digest, created_at, lease_until) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (scope_digest) DO NOTHING",
        idempotency_take_over: "UPDATE idempotency_records SET lease_until = $4 \
              WHERE scope_digest = $1 AND request_digest = $2 AND status IS NULL \
                AND lease_until <= $3",
        idempotency_get: "SELECT request_digest, status, content_type, body_key_id, sealed_body \
               FROM idempotency_records WHERE scope_digest = $1",
        idempotency_record: "UPDATE idempotency_records \
                SET status = $3, content_type = $4, body_key_id = $5, sealed_body = $6 \
              WHERE scope_digest = $1 AND lease_until = $2 AND status IS NULL",
        idempotency_forget: "DELETE FROM idempotency_records \
              WHERE scope_digest = $1 AND lease_until = $2 AND status IS NULL",
        sends_since: "SELECT sent_at, seq FROM code_sends WHERE target = $1 AND purpose = $2 \
             AND (sent_at > $3 OR seq = (SELECT MAX(seq) FROM code_sends \
                                      WHERE target = $1 AND purpose = $2)) \
             ORDER BY sent_at",
        insert_send: "INSERT INTO code_sends (target, purpose, seq, sent_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (target, purpose, seq) DO NOTHING",
        prune_sends: "DELETE FROM code_sends WHERE sent_at <= $1 AND seq < \
             (SELECT MAX(seq) FROM code_sends newest \
               WHERE newest.target = code_sends.target AND newest.purpose = code_sends.purpose)",
        newest_send: "SELECT MAX(sent_at) FROM code_sends WHERE target = $1 AND purpose = $2",
        count_request: "INSERT INTO ip_requests (client_ip, route, window_start, count) \
             VALUES ($1, $2, $3, 1) ON CONFLICT (client_ip, route, window_start) \
             DO UPDATE SET count = ip_requests.count + 1 RETURNING count",
        prune_request_windows: "DELETE FROM ip_requests WHERE window_start < $1",
        reset_token_owner: "SELECT account_id FROM reset_token_index WHERE token_digest = $1",
    };

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Pg {
    pub(super) async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = pool_options()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(SqlStore(pool))
    }
}

/// Pool options without sqlx's ping before every acquire: with it each statement cost a second
/// round trip (sqlx pings again when a connection is given back, off the request's path). A
/// connection idle for longer than a second is still checked before use, so the first request
/// after a database restart meets a live connection.
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(1) {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Where `url` points (`host:port/database`, no credentials); an error when it is not a
/// PostgreSQL URL.
pub(super) fn target(url: &str) -> Result<String, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    Ok(format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options
            .get_database()
            .unwrap_or_else(|| options.get_username())
    ))
}

/// One direct connection, closed again: the real cause of a failure ("Connection refused"),
/// where a pool would retry until its acquire timeout and say only "pool timed out".
pub(super) async fn check(url: &str) -> Result<(), StoreError> {
    let connection = PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
    // Closing politely is best effort: the pool opens its own connections.
    let _ = connection.close().await;
    Ok(())
}
