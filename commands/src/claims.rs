//! Values that belong to at most one account (DESIGN §3.6). Uniqueness cannot come from a
//! projection, so a value is claimed in the store before the command that takes it runs:
//!
//! 1. `claim` inserts a `pending` row; of concurrent claimants exactly one inserts it, the
//!    others see another owner and get [`ClaimError::Taken`];
//! 2. the command runs; on success `hold` marks the row `held`, on failure `release` deletes it;
//! 3. a process that died between 1 and 2 leaves a stale `pending` row. A later claimant takes
//!    it over only when the owner's state does not hold the value as that kind (its command
//!    never committed); otherwise the row is marked `held` and the claimant is refused. Reading
//!    the owner's state is the command layer's part (`CommandService::claim`).

use sqlx::Row;

use crate::store::{Store, StoreError};

/// What kind of value is claimed. Persisted: never rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    LoginEmail,
    LoginMobile,
    ServerIp,
    InstanceId,
}

impl ClaimKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginEmail => "login_email",
            Self::LoginMobile => "login_mobile",
            Self::ServerIp => "server_ip",
            Self::InstanceId => "instance_id",
        }
    }
}

/// How long a `pending` claim may stay before a claimant checks whether its command died.
const STALE_AFTER_SECONDS: i64 = 60;

/// What one claim attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimAttempt {
    /// The claim is ours (new, or already ours).
    Ours,
    /// Another owner holds it, or claimed it recently and may still be running its command.
    Taken,
    /// Another owner claimed it more than a minute ago and never marked it held: its command
    /// may have died. The caller decides, from the owner's state, with `resolve_stale`.
    Stale { owner: String },
}

impl Store {
    /// One attempt at claiming `value` of `kind` for `owner`.
    pub async fn try_claim(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<ClaimAttempt, StoreError> {
        loop {
            if self.insert_claim(kind, value, owner).await? {
                return Ok(ClaimAttempt::Ours);
            }
            let Some((current, held, stale)) = self.claim_row(kind, value).await? else {
                continue; // released in between: try again
            };
            return Ok(if current == owner {
                ClaimAttempt::Ours
            } else if held || !stale {
                ClaimAttempt::Taken
            } else {
                ClaimAttempt::Stale { owner: current }
            });
        }
    }

    /// Settles a stale claim of `owner`: marks it held when `owner_holds_value` (its command
    /// did commit), else drops it so the value can be claimed again.
    pub async fn resolve_stale(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
        owner_holds_value: bool,
    ) -> Result<(), StoreError> {
        if owner_holds_value {
            self.hold(kind, value, owner).await
        } else {
            self.release_pending(kind, value, owner).await
        }
    }

    /// Marks `owner`'s claim as held: its command committed.
    pub async fn hold(&self, kind: ClaimKind, value: &str, owner: &str) -> Result<(), StoreError> {
        let sql = "UPDATE claims SET state = 'held' WHERE kind = $1 AND value = $2 AND owner = $3";
        self.exec3(sql, kind.as_str(), value, owner).await
    }

    /// Gives up `owner`'s claim, pending or held (a failed command, a released server IP).
    pub async fn release(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM claims WHERE kind = $1 AND value = $2 AND owner = $3";
        self.exec3(sql, kind.as_str(), value, owner).await
    }

    /// Who owns `value`, if anyone (pending or held).
    pub async fn claim_owner(
        &self,
        kind: ClaimKind,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .claim_row(kind, value)
            .await?
            .map(|(owner, _, _)| owner))
    }

    async fn release_pending(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        let sql = "DELETE FROM claims WHERE kind = $1 AND value = $2 AND owner = $3 AND state = 'pending'";
        self.exec3(sql, kind.as_str(), value, owner).await
    }

    async fn insert_claim(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO claims (kind, value, owner, state) VALUES ($1, $2, $3, 'pending') \
                   ON CONFLICT (kind, value) DO NOTHING";
        let inserted = match self {
            Self::Postgres(pool) => sqlx::query(sql)
                .bind(kind.as_str())
                .bind(value)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Sqlite(pool) => sqlx::query(&sqlite(sql))
                .bind(kind.as_str())
                .bind(value)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(inserted == 1)
    }

    /// (owner, held, stale) of the claim on `value`.
    async fn claim_row(
        &self,
        kind: ClaimKind,
        value: &str,
    ) -> Result<Option<(String, bool, bool)>, StoreError> {
        let row = match self {
            Self::Postgres(pool) => sqlx::query(
                "SELECT owner, state = 'held' AS held, \
                        claimed_at < now() - make_interval(secs => $3) AS stale \
                   FROM claims WHERE kind = $1 AND value = $2",
            )
            .bind(kind.as_str())
            .bind(value)
            .bind(STALE_AFTER_SECONDS as f64)
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get("owner"), r.get("held"), r.get("stale"))),
            Self::Sqlite(pool) => sqlx::query(
                "SELECT owner, state = 'held' AS held, \
                        julianday(claimed_at) < julianday('now') - (?3 / 86400.0) AS stale \
                   FROM claims WHERE kind = ?1 AND value = ?2",
            )
            .bind(kind.as_str())
            .bind(value)
            .bind(STALE_AFTER_SECONDS)
            .fetch_optional(pool)
            .await?
            .map(|r| (r.get("owner"), r.get("held"), r.get("stale"))),
        };
        Ok(row)
    }

    async fn exec3(&self, sql: &str, a: &str, b: &str, c: &str) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => {
                sqlx::query(sql)
                    .bind(a)
                    .bind(b)
                    .bind(c)
                    .execute(pool)
                    .await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(&sqlite(sql))
                    .bind(a)
                    .bind(b)
                    .bind(c)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}

/// The SQLite spelling of a statement written with PostgreSQL's `$n` placeholders.
fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}
