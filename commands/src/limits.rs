//! Rate limits of SPEC §2, counted in the shared store so they hold across gateway processes:
//! codes per target and purpose (one a minute, ten a day; a refused request does not restart
//! the window), account-information messages per mobile (ten a day), and requests per client IP
//! and route (fixed one-minute windows).

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::store::{Store, StoreError};

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub std::time::Duration);

impl RetryAfter {
    fn from_chrono(d: Duration) -> Self {
        Self(
            d.to_std()
                .unwrap_or_default()
                .max(std::time::Duration::from_secs(1)),
        )
    }

    /// Whole seconds, at least one (the `Retry-After` header).
    pub fn seconds(&self) -> u64 {
        self.0.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// A per-target limit: at most `per_day` in a rolling 24 hours, and none within `cooldown` of
/// the last one.
#[derive(Debug, Clone, Copy)]
pub struct TargetLimit {
    pub cooldown: Duration,
    pub per_day: i64,
}

impl TargetLimit {
    /// Codes: one a minute, ten a day (SPEC §2).
    pub const CODES: TargetLimit = TargetLimit {
        cooldown: Duration::seconds(60),
        per_day: 10,
    };
    /// Account-information messages: ten a day per mobile, no cooldown.
    pub const ACCOUNT_INFO: TargetLimit = TargetLimit {
        cooldown: Duration::zero(),
        per_day: 10,
    };
}

impl Store {
    /// Counts one send to `target` for `purpose` at `now` if `limit` allows it.
    pub async fn admit_send(
        &self,
        target: &str,
        purpose: &str,
        limit: TargetLimit,
        now: DateTime<Utc>,
    ) -> Result<Result<(), RetryAfter>, StoreError> {
        let day_ago = now - Duration::days(1);
        macro_rules! admit {
            ($pool:expr, $lock:expr, $fix:expr) => {{
                let fix: fn(&str) -> String = $fix;
                let mut tx = $pool.begin().await?;
                // Serialise admissions of one (target, purpose): check-then-insert is then exact.
                sqlx::query(&fix($lock))
                    .bind(target)
                    .bind(purpose)
                    .bind(day_ago)
                    .execute(&mut *tx)
                    .await?;
                let times: Vec<DateTime<Utc>> = sqlx::query_scalar(&fix(
                    "SELECT sent_at FROM code_sends WHERE target = $1 AND purpose = $2 \
                     AND sent_at > $3 ORDER BY sent_at",
                ))
                .bind(target)
                .bind(purpose)
                .bind(day_ago)
                .fetch_all(&mut *tx)
                .await?;
                if let Some(last) = times.last() {
                    if now - *last < limit.cooldown {
                        return Ok(Err(RetryAfter::from_chrono(limit.cooldown - (now - *last))));
                    }
                }
                if times.len() as i64 >= limit.per_day {
                    let oldest = times[times.len() - limit.per_day as usize];
                    return Ok(Err(RetryAfter::from_chrono(
                        oldest + Duration::days(1) - now,
                    )));
                }
                sqlx::query(&fix(
                    "INSERT INTO code_sends (target, purpose, sent_at) VALUES ($1, $2, $3)",
                ))
                .bind(target)
                .bind(purpose)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            }};
        }
        match self {
            // The advisory lock is taken; the other binds are unused but keep one shape.
            Self::Postgres(pool) => admit!(
                pool,
                "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2)) \
                 WHERE $3::timestamptz IS NOT NULL",
                |s| s.to_owned()
            ),
            // SQLite: a write takes the database's single write lock at once; it also prunes.
            Self::Sqlite(pool) => admit!(
                pool,
                "DELETE FROM code_sends WHERE target = $1 AND purpose = $2 AND sent_at <= $3",
                |s| s.replace('$', "?")
            ),
        }
        Ok(Ok(()))
    }

    /// When the newest counted send to `target` for `purpose` was admitted: a code issued
    /// before it has been replaced (SPEC §2).
    pub async fn newest_send(
        &self,
        target: &str,
        purpose: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        const SQL: &str = "SELECT MAX(sent_at) FROM code_sends WHERE target = $1 AND purpose = $2";
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(target)
                    .bind(purpose)
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(&SQL.replace('$', "?"))
                    .bind(target)
                    .bind(purpose)
                    .fetch_one(pool)
                    .await?
            }
        })
    }

    /// Counts one request from `client_ip` to `route` at `now` against `per_minute`.
    pub async fn admit_request(
        &self,
        client_ip: &str,
        route: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<Result<(), RetryAfter>, StoreError> {
        let window = now.timestamp().div_euclid(60);
        const SQL: &str = "INSERT INTO ip_requests (client_ip, route, window_start, count) \
            VALUES ($1, $2, $3, 1) ON CONFLICT (client_ip, route, window_start) \
            DO UPDATE SET count = ip_requests.count + 1 RETURNING count";
        let count: i32 = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(SQL)
                    .bind(client_ip)
                    .bind(route)
                    .bind(window)
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(&SQL.replace('$', "?"))
                    .bind(client_ip)
                    .bind(route)
                    .bind(window)
                    .fetch_one(pool)
                    .await?
            }
        };
        if rand::rng().random_ratio(1, 200) {
            self.prune_request_windows(window).await?;
        }
        if count as i64 > i64::from(per_minute) {
            let reset = (window + 1) * 60 - now.timestamp();
            return Ok(Err(RetryAfter(std::time::Duration::from_secs(
                reset.max(1) as u64,
            ))));
        }
        Ok(Ok(()))
    }

    async fn prune_request_windows(&self, window: i64) -> Result<(), StoreError> {
        const SQL: &str = "DELETE FROM ip_requests WHERE window_start < $1";
        match self {
            Self::Postgres(pool) => {
                sqlx::query(SQL).bind(window - 1).execute(pool).await?;
            }
            Self::Sqlite(pool) => {
                sqlx::query(&SQL.replace('$', "?"))
                    .bind(window - 1)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }
}
