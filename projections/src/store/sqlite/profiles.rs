//! Profile batches on SQLite: loaded and saved a row at a time (statements are cheap
//! in-process; SQLite has no array parameters).

use std::collections::HashMap;

use sqlx::SqliteConnection;

use crate::db::ReadError;
use crate::profile::{ProfileRow, Tables};
use crate::store::{PROFILE_COLUMNS, PROFILE_UPDATE};

/// The rows (with servers) of `ids` in `tables`.
pub(super) async fn load(
    conn: &mut SqliteConnection,
    tables: Tables,
    ids: &[String],
) -> Result<HashMap<String, ProfileRow>, ReadError> {
    let profile_sql = format!("SELECT * FROM {} WHERE account_id = ?1", tables.profiles);
    let servers_sql = format!(
        "SELECT * FROM {} WHERE account_id = ?1 ORDER BY assigned_at, instance_id",
        tables.servers
    );
    let mut rows = HashMap::with_capacity(ids.len());
    for id in ids {
        let found: Option<ProfileRow> = sqlx::query_as(&profile_sql)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(mut profile) = found {
            profile.servers = sqlx::query_as(&servers_sql)
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
            rows.insert(id.clone(), profile);
        }
    }
    Ok(rows)
}

/// Saves `rows` (with their servers) in `tables`.
pub(super) async fn save(
    conn: &mut SqliteConnection,
    tables: Tables,
    rows: &[&ProfileRow],
) -> Result<(), ReadError> {
    let upsert = format!(
        "INSERT INTO {} ({PROFILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
         ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
         ON CONFLICT (account_id) DO UPDATE SET {PROFILE_UPDATE}",
        tables.profiles
    );
    let delete = format!("DELETE FROM {} WHERE account_id = ?1", tables.servers);
    let insert = format!(
        "INSERT INTO {} (account_id, instance_id, public_ip, assigned_at) VALUES (?1, ?2, ?3, ?4)",
        tables.servers
    );
    for r in rows {
        sqlx::query(&upsert)
            .bind(&r.account_id)
            .bind(r.last_sequence)
            .bind(r.registered_at)
            .bind(&r.login_email)
            .bind(&r.login_mobile)
            .bind(&r.contact_mobile)
            .bind(r.contact_mobile_verified)
            .bind(&r.contact_email)
            .bind(r.contact_email_verified)
            .bind(&r.recovery_mobile)
            .bind(&r.recovery_email)
            .bind(&r.pending_recovery_mobile)
            .bind(&r.pending_recovery_email)
            .bind(&r.pending_login_email)
            .bind(r.password_set)
            .bind(r.password_changed_at)
            .bind(r.reminded_for)
            .bind(&r.reset_token_digest)
            .bind(r.reset_token_expires_at)
            .execute(&mut *conn)
            .await?;
        sqlx::query(&delete)
            .bind(&r.account_id)
            .execute(&mut *conn)
            .await?;
        for s in &r.servers {
            sqlx::query(&insert)
                .bind(&s.account_id)
                .bind(&s.instance_id)
                .bind(&s.public_ip)
                .bind(s.assigned_at)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}
