//! Rate limits of SPEC §2, counted in the shared store so they hold across gateway processes:
//! codes per target and purpose (one a minute, ten a day; a refused request does not restart
//! the window), account-information messages per mobile (ten a day), and requests per client IP
//! and route (fixed one-minute windows).

use async_trait::async_trait;
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

impl TargetLimit {
    /// Whether one more send at `now` is allowed after the sends at `times` (the last day's,
    /// oldest first): `Err` with how long to wait when not. A refused request is not counted,
    /// so it does not restart the window.
    pub fn admits(&self, times: &[DateTime<Utc>], now: DateTime<Utc>) -> Result<(), RetryAfter> {
        if let Some(last) = times.last() {
            if now - *last < self.cooldown {
                return Err(RetryAfter::from_chrono(self.cooldown - (now - *last)));
            }
        }
        let per_day = usize::try_from(self.per_day).unwrap_or(usize::MAX);
        if times.len() >= per_day {
            let oldest = times[times.len() - per_day];
            return Err(RetryAfter::from_chrono(oldest + Duration::days(1) - now));
        }
        Ok(())
    }
}

/// The counters: each dialect makes `admit_send` exact under concurrency its own way.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Atomically with respect to other admissions of (`target`, `purpose`): reads the sends
    /// since `now` minus a day, asks `limit`, and records one at `now` when admitted.
    async fn admit_send(
        &self,
        target: &str,
        purpose: &str,
        limit: TargetLimit,
        now: DateTime<Utc>,
    ) -> Result<Result<(), RetryAfter>, StoreError>;
    /// Forgets the sends at or before `before` (they no longer count), keeping each target's
    /// newest: admissions number their sends after it.
    async fn prune_sends(&self, before: DateTime<Utc>) -> Result<(), StoreError>;
    /// When the newest counted send to `target` for `purpose` was admitted.
    async fn newest_send(
        &self,
        target: &str,
        purpose: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Counts one request of `client_ip` to `route` in minute `window`; the count so far.
    async fn count_request(
        &self,
        client_ip: &str,
        route: &str,
        window: i64,
    ) -> Result<i64, StoreError>;
    /// Forgets the windows before `window`.
    async fn prune_request_windows(&self, window: i64) -> Result<(), StoreError>;
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
        if rand::rng().random_ratio(1, 200) {
            self.limits().prune_sends(now - Duration::days(1)).await?;
        }
        self.limits().admit_send(target, purpose, limit, now).await
    }

    /// When the newest counted send to `target` for `purpose` was admitted: a code issued
    /// before it has been replaced (SPEC §2).
    pub async fn newest_send(
        &self,
        target: &str,
        purpose: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.limits().newest_send(target, purpose).await
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
        let count = self
            .limits()
            .count_request(client_ip, route, window)
            .await?;
        if rand::rng().random_ratio(1, 200) {
            self.limits().prune_request_windows(window - 1).await?;
        }
        if count > i64::from(per_minute) {
            let reset = (window + 1) * 60 - now.timestamp();
            return Ok(Err(RetryAfter(std::time::Duration::from_secs(
                reset.max(1) as u64,
            ))));
        }
        Ok(Ok(()))
    }
}
