//! Profile batches on PostgreSQL: loaded and saved with one statement each way (`ANY` and
//! `UNNEST`), whatever the batch size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::db::ReadError;
use crate::profile::{ProfileRow, ServerRow, Tables};
use crate::store::{PROFILE_COLUMNS, PROFILE_UPDATE};

/// The rows (with servers) of `ids` in `tables`.
pub(super) async fn load(
    conn: &mut PgConnection,
    tables: Tables,
    ids: &[String],
) -> Result<HashMap<String, ProfileRow>, ReadError> {
    let sql = format!(
        "SELECT * FROM {} WHERE account_id = ANY($1)",
        tables.profiles
    );
    let mut rows: HashMap<String, ProfileRow> = sqlx::query_as::<_, ProfileRow>(&sql)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|p| (p.account_id.clone(), p))
        .collect();
    let sql = format!(
        "SELECT * FROM {} WHERE account_id = ANY($1) ORDER BY assigned_at, instance_id",
        tables.servers
    );
    for server in sqlx::query_as::<_, ServerRow>(&sql)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?
    {
        if let Some(p) = rows.get_mut(&server.account_id) {
            p.servers.push(server);
        }
    }
    Ok(rows)
}

/// Saves `rows` (with their servers) in `tables`: one upsert and one server rewrite for the
/// whole batch.
pub(super) async fn save(
    conn: &mut PgConnection,
    tables: Tables,
    rows: &[&ProfileRow],
) -> Result<(), ReadError> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&ProfileRow) -> Option<String>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let time =
        |f: fn(&ProfileRow) -> Option<DateTime<Utc>>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let flag = |f: fn(&ProfileRow) -> bool| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let ids: Vec<String> = rows.iter().map(|r| r.account_id.clone()).collect();
    let sql = format!(
        "INSERT INTO {} ({PROFILE_COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::bigint[], \
         $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[], $9::bool[], \
         $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bool[], \
         $16::timestamptz[], $17::timestamptz[], $18::text[], $19::timestamptz[]) \
         ON CONFLICT (account_id) DO UPDATE SET {PROFILE_UPDATE}",
        tables.profiles
    );
    sqlx::query(&sql)
        .bind(&ids)
        .bind(rows.iter().map(|r| r.last_sequence).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.registered_at).collect::<Vec<_>>())
        .bind(col(|r| r.login_email.clone()))
        .bind(col(|r| r.login_mobile.clone()))
        .bind(col(|r| r.contact_mobile.clone()))
        .bind(flag(|r| r.contact_mobile_verified))
        .bind(col(|r| r.contact_email.clone()))
        .bind(flag(|r| r.contact_email_verified))
        .bind(col(|r| r.recovery_mobile.clone()))
        .bind(col(|r| r.recovery_email.clone()))
        .bind(col(|r| r.pending_recovery_mobile.clone()))
        .bind(col(|r| r.pending_recovery_email.clone()))
        .bind(col(|r| r.pending_login_email.clone()))
        .bind(flag(|r| r.password_set))
        .bind(time(|r| r.password_changed_at))
        .bind(time(|r| r.reminded_for))
        .bind(col(|r| r.reset_token_digest.clone()))
        .bind(time(|r| r.reset_token_expires_at))
        .execute(&mut *conn)
        .await?;

    let sql = format!("DELETE FROM {} WHERE account_id = ANY($1)", tables.servers);
    sqlx::query(&sql).bind(&ids).execute(&mut *conn).await?;
    let servers: Vec<&ServerRow> = rows.iter().flat_map(|r| r.servers.iter()).collect();
    if !servers.is_empty() {
        let sql = format!(
            "INSERT INTO {} (account_id, instance_id, public_ip, assigned_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[])",
            tables.servers
        );
        let text =
            |f: fn(&ServerRow) -> &str| servers.iter().map(|s| f(s).to_owned()).collect::<Vec<_>>();
        sqlx::query(&sql)
            .bind(text(|s| &s.account_id))
            .bind(text(|s| &s.instance_id))
            .bind(text(|s| &s.public_ip))
            .bind(servers.iter().map(|s| s.assigned_at).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
