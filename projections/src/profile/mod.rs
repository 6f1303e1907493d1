//! The profile read model: rows of `profiles` and `servers`, loaded and saved a batch at a
//! time (one query each way on PostgreSQL, whatever the batch size).

mod row;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use domain::account::ACCOUNT_AGGREGATE_TYPE;
use domain::stored::{from_payload, RecordedEvent};
use domain::AccountEvent;
use sqlx::{Postgres, Row, Sqlite, Transaction};
use tracing::warn;

pub use row::{ProfileRow, ServerRow};

use crate::db::{sqlite, ReadError};

/// The tables a projection writes: the live ones, or the copies a rebuild fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub profiles: &'static str,
    pub servers: &'static str,
}

impl Tables {
    pub const LIVE: Tables = Tables {
        profiles: "profiles",
        servers: "servers",
    };
    pub const REBUILD: Tables = Tables {
        profiles: "profiles_rebuild",
        servers: "servers_rebuild",
    };
}

const COLUMNS: &str = "account_id, last_sequence, registered_at, login_email, login_mobile, \
    contact_mobile, contact_mobile_verified, contact_email, contact_email_verified, \
    recovery_mobile, recovery_email, pending_recovery_mobile, pending_recovery_email, \
    pending_login_email, password_set, password_changed_at, reminded_for, reset_token_digest, \
    reset_token_expires_at";

const UPDATE_SET: &str = "last_sequence = EXCLUDED.last_sequence, \
    registered_at = EXCLUDED.registered_at, login_email = EXCLUDED.login_email, \
    login_mobile = EXCLUDED.login_mobile, contact_mobile = EXCLUDED.contact_mobile, \
    contact_mobile_verified = EXCLUDED.contact_mobile_verified, \
    contact_email = EXCLUDED.contact_email, contact_email_verified = EXCLUDED.contact_email_verified, \
    recovery_mobile = EXCLUDED.recovery_mobile, recovery_email = EXCLUDED.recovery_email, \
    pending_recovery_mobile = EXCLUDED.pending_recovery_mobile, \
    pending_recovery_email = EXCLUDED.pending_recovery_email, \
    pending_login_email = EXCLUDED.pending_login_email, password_set = EXCLUDED.password_set, \
    password_changed_at = EXCLUDED.password_changed_at, reminded_for = EXCLUDED.reminded_for, \
    reset_token_digest = EXCLUDED.reset_token_digest, \
    reset_token_expires_at = EXCLUDED.reset_token_expires_at";

macro_rules! profile_from_row {
    ($name:ident, $row:ty) => {
        pub(crate) fn $name(row: &$row) -> Result<ProfileRow, sqlx::Error> {
            Ok(ProfileRow {
                account_id: row.try_get("account_id")?,
                last_sequence: row.try_get("last_sequence")?,
                registered_at: row.try_get("registered_at")?,
                login_email: row.try_get("login_email")?,
                login_mobile: row.try_get("login_mobile")?,
                contact_mobile: row.try_get("contact_mobile")?,
                contact_mobile_verified: row.try_get("contact_mobile_verified")?,
                contact_email: row.try_get("contact_email")?,
                contact_email_verified: row.try_get("contact_email_verified")?,
                recovery_mobile: row.try_get("recovery_mobile")?,
                recovery_email: row.try_get("recovery_email")?,
                pending_recovery_mobile: row.try_get("pending_recovery_mobile")?,
                pending_recovery_email: row.try_get("pending_recovery_email")?,
                pending_login_email: row.try_get("pending_login_email")?,
                password_set: row.try_get("password_set")?,
                password_changed_at: row.try_get("password_changed_at")?,
                reminded_for: row.try_get("reminded_for")?,
                reset_token_digest: row.try_get("reset_token_digest")?,
                reset_token_expires_at: row.try_get("reset_token_expires_at")?,
                servers: Vec::new(),
            })
        }
    };
}
profile_from_row!(pg_profile, sqlx::postgres::PgRow);
profile_from_row!(sqlite_profile, sqlx::sqlite::SqliteRow);

macro_rules! server_from_row {
    ($name:ident, $row:ty) => {
        pub(crate) fn $name(row: &$row) -> Result<(String, ServerRow), sqlx::Error> {
            Ok((
                row.try_get("account_id")?,
                ServerRow {
                    instance_id: row.try_get("instance_id")?,
                    public_ip: row.try_get("public_ip")?,
                    assigned_at: row.try_get("assigned_at")?,
                },
            ))
        }
    };
}
server_from_row!(pg_server, sqlx::postgres::PgRow);
server_from_row!(sqlite_server, sqlx::sqlite::SqliteRow);

/// Loads the rows (with servers) of `ids` inside `tx` (PostgreSQL).
pub(crate) async fn load_pg(
    tx: &mut Transaction<'_, Postgres>,
    tables: Tables,
    ids: &[String],
) -> Result<HashMap<String, ProfileRow>, ReadError> {
    let sql = format!(
        "SELECT * FROM {} WHERE account_id = ANY($1)",
        tables.profiles
    );
    let mut rows: HashMap<String, ProfileRow> = sqlx::query(&sql)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| pg_profile(r).map(|p| (p.account_id.clone(), p)))
        .collect::<Result<_, _>>()?;
    let sql = format!(
        "SELECT * FROM {} WHERE account_id = ANY($1) ORDER BY assigned_at, instance_id",
        tables.servers
    );
    for row in sqlx::query(&sql).bind(ids).fetch_all(&mut **tx).await? {
        let (account, server) = pg_server(&row)?;
        if let Some(p) = rows.get_mut(&account) {
            p.servers.push(server);
        }
    }
    Ok(rows)
}

/// Saves `rows` (with their servers) inside `tx` (PostgreSQL): one upsert and one server
/// rewrite for the whole batch.
pub(crate) async fn save_pg(
    tx: &mut Transaction<'_, Postgres>,
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
        "INSERT INTO {} ({COLUMNS}) SELECT * FROM UNNEST($1::text[], $2::bigint[], \
         $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[], $9::bool[], \
         $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bool[], \
         $16::timestamptz[], $17::timestamptz[], $18::text[], $19::timestamptz[]) \
         ON CONFLICT (account_id) DO UPDATE SET {UPDATE_SET}",
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
        .execute(&mut **tx)
        .await?;

    let sql = format!("DELETE FROM {} WHERE account_id = ANY($1)", tables.servers);
    sqlx::query(&sql).bind(&ids).execute(&mut **tx).await?;
    let servers: Vec<(&str, &ServerRow)> = rows
        .iter()
        .flat_map(|r| r.servers.iter().map(|s| (r.account_id.as_str(), s)))
        .collect();
    if !servers.is_empty() {
        let sql = format!(
            "INSERT INTO {} (account_id, instance_id, public_ip, assigned_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[])",
            tables.servers
        );
        sqlx::query(&sql)
            .bind(
                servers
                    .iter()
                    .map(|(a, _)| a.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                servers
                    .iter()
                    .map(|(_, s)| s.instance_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                servers
                    .iter()
                    .map(|(_, s)| s.public_ip.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                servers
                    .iter()
                    .map(|(_, s)| s.assigned_at)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Loads the rows (with servers) of `ids` inside `tx` (SQLite).
pub(crate) async fn load_sqlite(
    tx: &mut Transaction<'_, Sqlite>,
    tables: Tables,
    ids: &[String],
) -> Result<HashMap<String, ProfileRow>, ReadError> {
    let mut rows = HashMap::with_capacity(ids.len());
    let profile_sql = format!("SELECT * FROM {} WHERE account_id = ?1", tables.profiles);
    let servers_sql = format!(
        "SELECT * FROM {} WHERE account_id = ?1 ORDER BY assigned_at, instance_id",
        tables.servers
    );
    for id in ids {
        let Some(row) = sqlx::query(&profile_sql)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
        else {
            continue;
        };
        let mut profile = sqlite_profile(&row)?;
        for row in sqlx::query(&servers_sql)
            .bind(id)
            .fetch_all(&mut **tx)
            .await?
        {
            profile.servers.push(sqlite_server(&row)?.1);
        }
        rows.insert(id.clone(), profile);
    }
    Ok(rows)
}

/// Saves `rows` (with their servers) inside `tx` (SQLite).
pub(crate) async fn save_sqlite(
    tx: &mut Transaction<'_, Sqlite>,
    tables: Tables,
    rows: &[&ProfileRow],
) -> Result<(), ReadError> {
    let upsert = sqlite(&format!(
        "INSERT INTO {} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (account_id) DO UPDATE SET {UPDATE_SET}",
        tables.profiles
    ));
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
            .execute(&mut **tx)
            .await?;
        sqlx::query(&delete)
            .bind(&r.account_id)
            .execute(&mut **tx)
            .await?;
        for s in &r.servers {
            sqlx::query(&insert)
                .bind(&r.account_id)
                .bind(&s.instance_id)
                .bind(&s.public_ip)
                .bind(s.assigned_at)
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Loading and saving profile rows inside a transaction, on either backend.
pub(crate) trait ProfileTx {
    fn load(
        &mut self,
        tables: Tables,
        ids: &[String],
    ) -> impl std::future::Future<Output = Result<HashMap<String, ProfileRow>, ReadError>> + Send;
    fn save(
        &mut self,
        tables: Tables,
        rows: &[&ProfileRow],
    ) -> impl std::future::Future<Output = Result<(), ReadError>> + Send;
}

impl ProfileTx for Transaction<'_, Postgres> {
    async fn load(
        &mut self,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError> {
        load_pg(self, tables, ids).await
    }
    async fn save(&mut self, tables: Tables, rows: &[&ProfileRow]) -> Result<(), ReadError> {
        save_pg(self, tables, rows).await
    }
}

impl ProfileTx for Transaction<'_, Sqlite> {
    async fn load(
        &mut self,
        tables: Tables,
        ids: &[String],
    ) -> Result<HashMap<String, ProfileRow>, ReadError> {
        load_sqlite(self, tables, ids).await
    }
    async fn save(&mut self, tables: Tables, rows: &[&ProfileRow]) -> Result<(), ReadError> {
        save_sqlite(self, tables, rows).await
    }
}

/// Applies a batch of the log to the profile tables inside `tx`: one load and one save for the
/// batch, whatever its size.
pub(crate) async fn apply_in<T: ProfileTx>(
    tx: &mut T,
    tables: Tables,
    events: &[RecordedEvent],
) -> Result<(), ReadError> {
    let ids: Vec<String> = events
        .iter()
        .filter(|e| e.aggregate_type == ACCOUNT_AGGREGATE_TYPE)
        .map(|e| e.aggregate_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut rows = tx.load(tables, &ids).await?;
    let changed = fold(&mut rows, events)?;
    let changed: Vec<&ProfileRow> = changed.iter().filter_map(|id| rows.get(id)).collect();
    tx.save(tables, &changed).await
}

/// Folds the account events of a batch into `rows`; returns the ids of the rows that changed.
pub(crate) fn fold(
    rows: &mut HashMap<String, ProfileRow>,
    events: &[RecordedEvent],
) -> Result<BTreeSet<String>, ReadError> {
    let mut changed = BTreeSet::new();
    for recorded in events
        .iter()
        .filter(|e| e.aggregate_type == ACCOUNT_AGGREGATE_TYPE)
    {
        let event: AccountEvent = from_payload(
            &recorded.event_type,
            &recorded.event_version,
            recorded.payload.clone(),
        )
        .map_err(|source| ReadError::Corrupt {
            aggregate_id: recorded.aggregate_id.clone(),
            sequence: recorded.sequence,
            source,
        })?;
        let sequence = i64::try_from(recorded.sequence).unwrap_or(i64::MAX);
        let id = &recorded.aggregate_id;
        let applied = match rows.get_mut(id) {
            Some(row) => row.apply(sequence, &event),
            None => match ProfileRow::registered(id, sequence, &event) {
                Some(row) => {
                    rows.insert(id.clone(), row);
                    true
                }
                None => {
                    warn!(account = %id, sequence, "event for an account without a profile row");
                    false
                }
            },
        };
        if applied {
            changed.insert(id.clone());
        }
    }
    Ok(changed)
}
