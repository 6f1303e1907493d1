//! The write side's stores on the embedded SQLite file. Every statement here is SQLite's (`?n`
//! placeholders, rowid order, `json_extract`), and each row shape is decoded once.

mod events;

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::Sqlite;

use super::sql::{Dialect, SqlStore, Statements};
use super::StoreError;

/// The write side's stores on one SQLite pool.
pub(super) type Lite = SqlStore<Sqlite>;

impl Dialect for Sqlite {
    const SQL: Statements = Statements {
        claim_insert: "INSERT INTO claims (kind, value, owner, state) \
             VALUES (?1, ?2, ?3, 'pending') ON CONFLICT (kind, value) DO NOTHING",
        claim_row: "SELECT owner, state = 'held' AS held, \
                    julianday(claimed_at) < julianday('now') - (?3 / 86400.0) AS stale \
               FROM claims WHERE kind = ?1 AND value = ?2",
        claim_hold: "UPDATE claims SET state = 'held' \
             WHERE kind = ?1 AND value = ?2 AND owner = ?3",
        claim_delete: "DELETE FROM claims WHERE kind = ?1 AND value = ?2 AND owner = ?3 \
               AND (NOT ?4 OR state = 'pending')",
        idempotency_prune: "DELETE FROM idempotency_records \
             WHERE scope_digest = ?1 AND created_at < ?2",
        idempotency_insert: "INSERT INTO idempotency_records \
             (scope_digest, request_digest, created_at, lease_until) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (scope_digest) DO NOTHING",
        idempotency_take_over: "UPDATE idempotency_records SET lease_until = ?4 \
              WHERE scope_digest = ?1 AND request_digest = ?2 AND status IS NULL \
                AND lease_until <= ?3",
        idempotency_get: "SELECT request_digest, status, content_type, body_key_id, sealed_body \
               FROM idempotency_records WHERE scope_digest = ?1",
        idempotency_record: "UPDATE idempotency_records \
                SET status = ?3, content_type = ?4, body_key_id = ?5, sealed_body = ?6 \
              WHERE scope_digest = ?1 AND lease_until = ?2 AND status IS NULL",
        idempotency_forget: "DELETE FROM idempotency_records \
              WHERE scope_digest = ?1 AND lease_until = ?2 AND status IS NULL",
        sends_since: "SELECT sent_at, seq FROM code_sends WHERE target = ?1 AND purpose = ?2 \
             AND (sent_at > ?3 OR seq = (SELECT MAX(seq) FROM code_sends \
                                      WHERE target = ?1 AND purpose = ?2)) \
             ORDER BY sent_at",
        insert_send: "INSERT INTO code_sends (target, purpose, seq, sent_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (target, purpose, seq) DO NOTHING",
        prune_sends: "DELETE FROM code_sends WHERE sent_at <= ?1 AND seq < \
             (SELECT MAX(seq) FROM code_sends newest \
               WHERE newest.target = code_sends.target AND newest.purpose = code_sends.purpose)",
        newest_send: "SELECT MAX(sent_at) FROM code_sends WHERE target = ?1 AND purpose = ?2",
        count_request: "INSERT INTO ip_requests (client_ip, route, window_start, count) \
             VALUES (?1, ?2, ?3, 1) ON CONFLICT (client_ip, route, window_start) \
             DO UPDATE SET count = ip_requests.count + 1 RETURNING count",
        prune_request_windows: "DELETE FROM ip_requests WHERE window_start < ?1",
        reset_token_owner: "SELECT account_id FROM reset_token_index WHERE token_digest = ?1",
    };

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }
}

impl Lite {
    /// Opens (creating if needed) the store file.
    pub(super) async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL with synchronous=FULL: an acknowledged command survives a power cut.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(SqlStore(pool))
    }
}
