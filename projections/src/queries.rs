//! What the gateway and the recovery flows ask of the read models.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::account::profile::password_change_recommended_before;

use crate::db::{ReadError, ReadStore};
use crate::profile::ProfileRow;

impl ReadStore {
    /// The profile row of `account_id`, with its servers.
    pub async fn profile_row(&self, account_id: &str) -> Result<Option<ProfileRow>, ReadError> {
        self.profiles.profile_row(account_id).await
    }

    /// Accounts whose verified recovery mobile or login mobile is `e164`.
    pub async fn accounts_by_mobile(&self, e164: &str) -> Result<Vec<String>, ReadError> {
        self.profiles.accounts_by_mobile(e164).await
    }

    /// Accounts whose login email is `email` (at most one: login emails are claimed).
    pub async fn accounts_by_login_email(&self, email: &str) -> Result<Vec<String>, ReadError> {
        self.profiles.accounts_by_login_email(email).await
    }

    /// Accounts holding the assigned (not released) public IP `ip`.
    pub async fn accounts_by_server_ip(&self, ip: &str) -> Result<Vec<String>, ReadError> {
        self.profiles.accounts_by_server_ip(ip).await
    }

    /// The account whose live reset token has this SHA-256.
    pub async fn account_by_reset_token(
        &self,
        digest_hex: &str,
    ) -> Result<Option<String>, ReadError> {
        self.profiles.account_by_reset_token(digest_hex).await
    }

    /// Up to `limit` accounts due a password reminder at `now` (the domain's rule, for a
    /// reminder age of `after_days`) and not reminded for that password, oldest first.
    pub async fn password_reminders_due(
        &self,
        now: DateTime<Utc>,
        after_days: i64,
        limit: i64,
    ) -> Result<Vec<String>, ReadError> {
        self.profiles
            .passwords_changed_before(password_change_recommended_before(now, after_days), limit)
            .await
    }

    /// The stream sequence the profile of `account_id` reflects (0 when there is no row yet).
    pub async fn profile_sequence(&self, account_id: &str) -> Result<u64, ReadError> {
        self.profiles.profile_sequence(account_id).await
    }

    /// Read-your-writes: waits (at most `timeout`) until the profile of `account_id` reflects
    /// `sequence`. Returns whether it does.
    pub async fn wait_for(
        &self,
        account_id: &str,
        sequence: u64,
        timeout: Duration,
    ) -> Result<bool, ReadError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            if self.profile_sequence(account_id).await? >= sequence {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}
