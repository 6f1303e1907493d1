//! The read side on PostgreSQL: every statement here is PostgreSQL's own (`$n` placeholders,
//! `ANY` / `UNNEST` batches, row locks, advisory locks).

mod anchors;
mod lock;
mod profiles;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult};
use sqlx::{PgConnection, PgPool, Postgres};

pub use lock::SessionLock;

use super::sql::{Dialect, Statements};
use super::Lease;
use crate::db::ReadError;
use crate::profile::{ProfileRow, Tables};

/// Connects to `url` and migrates the read side's tables.
pub(crate) async fn open(url: &str) -> Result<PgPool, ReadError> {
    let pool = pool_options()
        .max_connections(16)
        // Short, like the write side's (issue 12): with PostgreSQL down a request answers 503 within
        // a second, and the breaker answers the ones after it at once.
        .acquire_timeout(Duration::from_millis(500))
        .connect_with(PgConnectOptions::from_str(url)?)
        .await?;
    // The read side's migrations (versions from 1001) share the write side's ledger.
    sqlx::migrate!("./migrations/postgres")
        .set_ignore_missing(true)
        .run(&pool)
        .await?;
    Ok(pool)
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

#[async_trait]
impl Dialect for Postgres {
    const SQL: Statements = Statements {
        profile: "SELECT * FROM profiles WHERE account_id = $1",
        servers_of: "SELECT * FROM servers WHERE account_id = $1 \
                     ORDER BY assigned_at, instance_id",
        accounts_by_mobile: "SELECT account_id FROM profiles \
                             WHERE recovery_mobile = $1 OR login_mobile = $1 ORDER BY account_id",
        accounts_by_login_email: "SELECT account_id FROM profiles WHERE login_email = $1 \
                                  ORDER BY account_id",
        accounts_by_server_ip: "SELECT DISTINCT account_id FROM servers WHERE public_ip = $1 \
                                ORDER BY account_id",
        account_by_reset_token: "SELECT account_id FROM profiles WHERE reset_token_digest = $1",
        passwords_changed_before: "SELECT account_id FROM profiles \
             WHERE password_set AND password_changed_at < $1 \
               AND (reminded_for IS NULL OR reminded_for <> password_changed_at) \
             ORDER BY password_changed_at LIMIT $2",
        profile_sequence: "SELECT last_sequence FROM profiles WHERE account_id = $1",
        create_session: "INSERT INTO sessions \
             (token_hash, session_id, account_id, created_at, expires_at, last_used_at, ip, \
             user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        active_session:
            "SELECT s.session_id, s.account_id, s.created_at, s.expires_at, s.last_used_at, s.ip, \
                    s.user_agent, COALESCE((SELECT MAX(e.sequence) FROM events e \
                      WHERE e.aggregate_type = 'Account' AND e.aggregate_id = s.account_id), 0) \
                      AS account_head \
             FROM sessions s WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2",
        live_sessions:
            "SELECT session_id, account_id, created_at, expires_at, last_used_at, ip, user_agent \
             FROM sessions WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, session_id",
        touch_session: "UPDATE sessions SET last_used_at = $2 \
             WHERE session_id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        revoke_own_session: "UPDATE sessions SET revoked_at = $3 \
             WHERE session_id = $1 AND account_id = $2 AND revoked_at IS NULL \
             AND expires_at > $3",
        revoke_session: "UPDATE sessions SET revoked_at = $2 \
             WHERE session_id = $1 AND revoked_at IS NULL",
        revoke_sessions_but: "UPDATE sessions SET revoked_at = $2 \
             WHERE account_id = $1 AND revoked_at IS NULL AND session_id <> $3",
        seen_client: "SELECT session_id FROM sessions \
             WHERE account_id = $1 AND ip IS NOT DISTINCT FROM $2 \
               AND user_agent IS NOT DISTINCT FROM $3 \
               AND (created_at >= $4 OR last_used_at >= $4) LIMIT 1",
        checkpoint: "SELECT tx_id, position FROM projection_checkpoints WHERE name = $1",
        ensure_checkpoint: "INSERT INTO projection_checkpoints (name, tx_id, position) \
             VALUES ($1, 0, 0) ON CONFLICT (name) DO NOTHING",
        hold_checkpoint: "SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
        move_checkpoint: "UPDATE projection_checkpoints \
             SET tx_id = $2, position = $3, applied_at = now(), last_recorded_at = $4 \
             WHERE name = $1 AND ($5 OR (tx_id = $6 AND position = $7))",
        set_checkpoint: "UPDATE projection_checkpoints SET tx_id = $2, position = $3 \
             WHERE name = $1",
        relay_checkpoint: "SELECT tx_id, position FROM relay_checkpoints WHERE name = $1",
        ensure_relay_checkpoint: "INSERT INTO relay_checkpoints (name, tx_id, position) \
             VALUES ($1, 0, 0) ON CONFLICT (name) DO NOTHING",
        move_relay_checkpoint: "UPDATE relay_checkpoints \
             SET tx_id = $2, position = $3, published_at = CURRENT_TIMESTAMP \
             WHERE name = $1 AND tx_id = $4 AND position = $5",
        reset_relay_checkpoint: "UPDATE relay_checkpoints SET tx_id = 0, position = 0 \
             WHERE name = $1",
        create_copies: &[
            "DROP TABLE IF EXISTS profiles_rebuild",
            "DROP TABLE IF EXISTS servers_rebuild",
            "CREATE TABLE profiles_rebuild (LIKE profiles INCLUDING ALL)",
            "CREATE TABLE servers_rebuild (LIKE servers INCLUDING ALL)",
            "DELETE FROM projection_checkpoints WHERE name = 'profiles.rebuild'",
        ],
    };

    async fn load(
        conn: &mut PgConnection,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError> {
        profiles::load(conn, tables, ids).await
    }

    async fn save(
        conn: &mut PgConnection,
        tables: Tables,
        rows: &[&ProfileRow],
    ) -> Result<(), ReadError> {
        profiles::save(conn, tables, rows).await
    }

    async fn exclusive(pool: &PgPool, name: &str) -> Lease {
        Lease::held(SessionLock::acquire(pool, name).await)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }
}
