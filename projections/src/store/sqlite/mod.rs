//! The read side on the embedded SQLite file: every statement here is SQLite's own (`?n`
//! placeholders, row-at-a-time batches). One process uses the file, so there are no
//! cross-process locks; write transactions open with a write so they never upgrade a stale read.

mod anchors;
mod profiles;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use super::sql::{Dialect, Statements};
use super::Lease;
use crate::db::ReadError;
use crate::profile::{ProfileRow, Tables};

/// Opens (creating if needed) the file `url` names and migrates the read side's tables.
pub(crate) async fn open(url: &str) -> Result<SqlitePool, ReadError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with synchronous=FULL, as the event store: a committed checkpoint survives a
        // power cut together with the rows it covers.
        .synchronous(SqliteSynchronous::Full)
        // The write side's pool takes the file's one write lock in turns with this one.
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .set_ignore_missing(true)
        .run(&pool)
        .await?;
    Ok(pool)
}

#[async_trait]
impl Dialect for Sqlite {
    const SQL: Statements = Statements {
        profile: "SELECT * FROM profiles WHERE account_id = ?1",
        servers_of: "SELECT * FROM servers WHERE account_id = ?1 \
                     ORDER BY assigned_at, instance_id",
        accounts_by_mobile: "SELECT account_id FROM profiles \
                             WHERE recovery_mobile = ?1 OR login_mobile = ?1 ORDER BY account_id",
        accounts_by_login_email: "SELECT account_id FROM profiles WHERE login_email = ?1 \
                                  ORDER BY account_id",
        accounts_by_server_ip: "SELECT DISTINCT account_id FROM servers WHERE public_ip = ?1 \
                                ORDER BY account_id",
        account_by_reset_token: "SELECT account_id FROM profiles WHERE reset_token_digest = ?1",
        passwords_changed_before: "SELECT account_id FROM profiles \
             WHERE password_set AND password_changed_at < ?1 \
               AND (reminded_for IS NULL OR reminded_for <> password_changed_at) \
             ORDER BY password_changed_at LIMIT ?2",
        profile_sequence: "SELECT last_sequence FROM profiles WHERE account_id = ?1",
        create_session: "INSERT INTO sessions \
             (token_hash, session_id, account_id, created_at, expires_at, last_used_at, ip, \
             user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        active_session:
            "SELECT s.session_id, s.account_id, s.created_at, s.expires_at, s.last_used_at, s.ip, \
                    s.user_agent, COALESCE((SELECT MAX(e.sequence) FROM events e \
                      WHERE e.aggregate_type = 'Account' AND e.aggregate_id = s.account_id), 0) \
                      AS account_head \
             FROM sessions s WHERE s.token_hash = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2",
        live_sessions:
            "SELECT session_id, account_id, created_at, expires_at, last_used_at, ip, user_agent \
             FROM sessions WHERE account_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
             ORDER BY created_at DESC, session_id",
        touch_session: "UPDATE sessions SET last_used_at = ?2 \
             WHERE session_id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
        revoke_own_session: "UPDATE sessions SET revoked_at = ?3 \
             WHERE session_id = ?1 AND account_id = ?2 AND revoked_at IS NULL \
             AND expires_at > ?3",
        revoke_session: "UPDATE sessions SET revoked_at = ?2 \
             WHERE session_id = ?1 AND revoked_at IS NULL",
        revoke_sessions_but: "UPDATE sessions SET revoked_at = ?2 \
             WHERE account_id = ?1 AND revoked_at IS NULL AND session_id <> ?3",
        seen_client: "SELECT session_id FROM sessions \
             WHERE account_id = ?1 AND ip IS ?2 AND user_agent IS ?3 \
               AND (created_at >= ?4 OR last_used_at >= ?4) LIMIT 1",
        checkpoint: "SELECT tx_id, position FROM projection_checkpoints WHERE name = ?1",
        ensure_checkpoint: "INSERT INTO projection_checkpoints (name, tx_id, position) \
             VALUES (?1, 0, 0) ON CONFLICT (name) DO NOTHING",
        // A write: the transaction takes the file's write lock at once, so the projector waits.
        hold_checkpoint: "UPDATE projection_checkpoints SET name = name WHERE name = ?1",
        move_checkpoint: "UPDATE projection_checkpoints \
             SET tx_id = ?2, position = ?3, applied_at = CURRENT_TIMESTAMP, \
                 last_recorded_at = ?4 \
             WHERE name = ?1 AND (?5 OR (tx_id = ?6 AND position = ?7))",
        set_checkpoint: "UPDATE projection_checkpoints SET tx_id = ?2, position = ?3 \
             WHERE name = ?1",
        relay_checkpoint: "SELECT tx_id, position FROM relay_checkpoints WHERE name = ?1",
        ensure_relay_checkpoint: "INSERT INTO relay_checkpoints (name, tx_id, position) \
             VALUES (?1, 0, 0) ON CONFLICT (name) DO NOTHING",
        move_relay_checkpoint: "UPDATE relay_checkpoints \
             SET tx_id = ?2, position = ?3, published_at = CURRENT_TIMESTAMP \
             WHERE name = ?1 AND tx_id = ?4 AND position = ?5",
        reset_relay_checkpoint: "UPDATE relay_checkpoints SET tx_id = 0, position = 0 \
             WHERE name = ?1",
        create_copies: &[
            "DROP TABLE IF EXISTS profiles_rebuild",
            "DROP TABLE IF EXISTS servers_rebuild",
            "CREATE TABLE profiles_rebuild AS SELECT * FROM profiles WHERE 0",
            "CREATE UNIQUE INDEX profiles_rebuild_key ON profiles_rebuild (account_id)",
            "CREATE TABLE servers_rebuild AS SELECT * FROM servers WHERE 0",
            "CREATE UNIQUE INDEX servers_rebuild_key ON servers_rebuild (account_id, instance_id)",
            "DELETE FROM projection_checkpoints WHERE name = 'profiles.rebuild'",
        ],
    };

    async fn load(
        conn: &mut SqliteConnection,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError> {
        profiles::load(conn, tables, ids).await
    }

    async fn save(
        conn: &mut SqliteConnection,
        tables: Tables,
        rows: &[&ProfileRow],
    ) -> Result<(), ReadError> {
        profiles::save(conn, tables, rows).await
    }

    async fn exclusive(_pool: &SqlitePool, _name: &str) -> Lease {
        // One process uses the embedded file: it is the only instance.
        Lease::none()
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}
