//! Sign-in: by login email or account id with the password, or by login mobile with an SMS
//! code. A success opens a session (12 hours); a wrong password is recorded (and may lock
//! password sign-in); an unknown login gets the same answer, after the same Argon2 work, and
//! never locks anything. A refused password sign-in answers no sooner than
//! [`REFUSED_SIGN_IN_FLOOR`] after it began: a known login does more work than an unknown one
//! (reading the account, recording the failure), about a millisecond that a median of many tries
//! would otherwise show (issue 13, finding 7).
//!
//! A sign-in from a client (IP and user agent) from which the account had no session in the
//! configured number of days carries that client into the command, and the aggregate records it
//! with a protection link for the new-sign-in notice (docs/adr/0009). The sessions are looked up
//! before the command (the aggregate does no I/O) and before the new session exists.

use chrono::{DateTime, Utc};
use domain::account::{Account, AccountCommand, SignInClient};
use domain::values::{AccountId, Email, Mobile, VerificationCode};
use domain::{DomainError, PasswordHash, SessionId};
use std::sync::LazyLock;
use uuid::Uuid;

use super::{as_account_id, random_token, SmsPurpose};
use crate::claims::ClaimKind;
use crate::context::CommandContext;
use crate::ports::NewSession;
use crate::service::{CommandService, ServiceError};

/// The least time a refused password sign-in takes, known login or not: above what the work
/// of either takes on an idle machine (an Argon2id check of ~20 ms plus a few round trips).
pub const REFUSED_SIGN_IN_FLOOR: std::time::Duration = std::time::Duration::from_millis(150);

/// How long a session lives.
pub const SESSION_TTL: chrono::Duration = chrono::Duration::hours(12);

/// A hash that matches no password, verified for unknown logins so that they take as long.
static DECOY_HASH: LazyLock<PasswordHash> = LazyLock::new(|| {
    PasswordHash::from_phc(
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
         wP6zGe/eQcnBrHn5rLLCCLsbyz5mVf4whPu3O2m0/mY",
    )
});

/// An open session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The bearer token, shown once.
    pub token: String,
    pub session_id: SessionId,
    pub account_id: AccountId,
    pub expires_at: DateTime<Utc>,
}

impl CommandService {
    /// The account a password login names: an account id, or a login email.
    async fn account_for_login(&self, login: &str) -> Result<Option<AccountId>, ServiceError> {
        if let Some(id) = as_account_id(login) {
            return Ok(Some(id));
        }
        let Ok(email) = Email::parse(login) else {
            return Ok(None);
        };
        let owner = self
            .store()
            .claim_owner(ClaimKind::LoginEmail, email.as_str())
            .await?;
        let Some(owner) = owner.and_then(|o| AccountId::parse(&o).ok()) else {
            return Ok(None);
        };
        // A claim may still be pending (a binding not yet confirmed): only a bound email counts.
        let bound = |a: &Account| a.login_email.as_ref() == Some(&email);
        let account = self.account_checked(&owner, bound).await?.state;
        Ok(bound(&account).then_some(owner))
    }

    /// Sign-in with a login (email or account id) and password.
    pub async fn sign_in_with_password(
        &self,
        login: &str,
        password: &str,
        context: &CommandContext,
    ) -> Result<SignedIn, ServiceError> {
        let began = tokio::time::Instant::now();
        let outcome = self.check_sign_in(login, password, context).await;
        if let Err(ServiceError::Domain(DomainError::InvalidCredentials)) = &outcome {
            tokio::time::sleep_until(began + REFUSED_SIGN_IN_FLOOR).await;
        }
        outcome
    }

    async fn check_sign_in(
        &self,
        login: &str,
        password: &str,
        context: &CommandContext,
    ) -> Result<SignedIn, ServiceError> {
        let Some(id) = self.account_for_login(login).await? else {
            self.hasher().verify(password, &DECOY_HASH).await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        let now = self.now();
        let can_sign_in =
            |a: &Account| a.id.is_some() && a.password.is_some() && a.locked_until(now).is_none();
        let account = self.account_checked(&id, can_sign_in).await?.state;
        if account.id.is_none() || account.password.is_none() {
            self.hasher().verify(password, &DECOY_HASH).await?;
            return Err(DomainError::InvalidCredentials.into());
        }
        if let Some(until) = account.locked_until(now) {
            return Err(DomainError::Locked { until }.into());
        }
        let session_id = SessionId::new(Uuid::new_v4().to_string());
        let new_client = self.new_client(&id, context).await?;
        self.retry_on_stale_check(|| async {
            // The memo is enough: a check against a stale hash is refused as stale by the
            // executor, whose fresh read of the stream then leaves the memo current for the retry.
            let account = self.account_as_of(&id, 0).await?.state;
            let check = self.check_password(&account, password).await?;
            let command = AccountCommand::SignInWithPassword {
                check,
                session_id: session_id.clone(),
                new_client: new_client.clone(),
            };
            self.execute(&id, command, context).await
        })
        .await?;
        self.open_session(id, session_id, context).await
    }

    /// Sign-in with the login mobile and the code of challenge `code_id`.
    pub async fn sign_in_with_sms(
        &self,
        mobile: Mobile,
        code_id: &str,
        code: VerificationCode,
        context: &CommandContext,
    ) -> Result<SignedIn, ServiceError> {
        self.pass_challenge(&mobile, SmsPurpose::Login, code_id, code, context)
            .await?;
        let owner = self
            .store()
            .claim_owner(ClaimKind::LoginMobile, mobile.as_str())
            .await?
            .and_then(|o| AccountId::parse(&o).ok())
            .ok_or(DomainError::InvalidCode)?;
        let session_id = SessionId::new(Uuid::new_v4().to_string());
        let command = AccountCommand::SignInWithSms {
            session_id: session_id.clone(),
            new_client: self.new_client(&owner, context).await?,
        };
        self.execute(&owner, command, context).await?;
        self.open_session(owner, session_id, context).await
    }

    /// The client of `context` when account `id` had no session from it (same IP and user
    /// agent, revoked or not) created or used within the new-sign-in notice's days; `None` when
    /// it had one, or when the notice is off (then nothing is looked up).
    async fn new_client(
        &self,
        id: &AccountId,
        context: &CommandContext,
    ) -> Result<Option<SignInClient>, ServiceError> {
        let days = self.new_sign_in_notice_days();
        if days == 0 {
            return Ok(None);
        }
        let since = self.now() - chrono::Duration::days(i64::from(days));
        let ip = context.ip.map(|ip| ip.to_string());
        let seen = self
            .sessions()
            .seen_client(
                id.as_str(),
                ip.as_deref(),
                context.user_agent.as_deref(),
                since,
            )
            .await
            .map_err(ServiceError::Unavailable)?;
        Ok((!seen).then(|| SignInClient::new(context.ip, context.user_agent.as_deref())))
    }

    async fn open_session(
        &self,
        account_id: AccountId,
        session_id: SessionId,
        context: &CommandContext,
    ) -> Result<SignedIn, ServiceError> {
        let token = random_token();
        let created_at = self.now();
        let session = NewSession {
            session_id: session_id.as_str().to_owned(),
            account_id: account_id.as_str().to_owned(),
            created_at,
            expires_at: created_at + SESSION_TTL,
            ip: context.ip.map(|ip| ip.to_string()),
            user_agent: context.user_agent.clone(),
        };
        self.sessions()
            .create(&token, &session)
            .await
            .map_err(ServiceError::Unavailable)?;
        Ok(SignedIn {
            token,
            session_id,
            account_id,
            expires_at: session.expires_at,
        })
    }

    /// Ends one session.
    pub async fn sign_out(&self, session: &SessionId) -> Result<(), ServiceError> {
        self.sessions()
            .revoke(session.as_str())
            .await
            .map_err(ServiceError::Unavailable)
    }
}
