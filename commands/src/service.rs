//! The command flows: a parsed request in, committed events (or a domain refusal) out. Each
//! flow does what the aggregate cannot: claims across accounts, new ids, and Argon2 work,
//! before it runs the command.

use domain::account::{rejection, AccountCommand, VerificationMethod};
use domain::password::{Password, PasswordPolicy};
use domain::values::{AccountId, Email};
use domain::{Account, DomainError, DomainServices, PasswordCheck, SessionId};
use uuid::Uuid;

use std::sync::Arc;

use crate::claims::{ClaimAttempt, ClaimKind};
use crate::context::{Actor, CommandContext};
use crate::executor::{CommandError, Committed, Executor, Loaded};
use crate::hasher::{Overloaded, PasswordHasher};
use crate::idempotency::Idempotency;
use crate::limits::{RetryAfter, TargetLimit};
use crate::ports::{AccountDirectory, NoDirectory, NoSessions, SessionStore};
use crate::secrets::Keyring;
use crate::store::{Store, StoreError};

/// Why a flow did not succeed: a rule, or a technical failure the caller answers with 503.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many requests for this target or client: try again after the delay.
    #[error("rate limited")]
    RateLimited(RetryAfter),
    /// A read model or the session store failed.
    #[error("dependency unavailable: {0}")]
    Unavailable(#[source] domain::PortError),
}

impl From<CommandError<DomainError>> for ServiceError {
    fn from(e: CommandError<DomainError>) -> Self {
        match e {
            CommandError::Domain(e) => Self::Domain(e),
            CommandError::Store(e) => Self::Store(e),
        }
    }
}

/// What a sign-up by email made.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub account_id: AccountId,
    /// The id of the code sent to the new contact email.
    pub code_id: String,
}

#[derive(Clone)]
pub struct CommandService {
    executor: Executor,
    hasher: PasswordHasher,
    keyring: Keyring,
    directory: Arc<dyn AccountDirectory>,
    sessions: Arc<dyn SessionStore>,
    /// A sign-in from a client (IP and user agent) without a session of the account in this
    /// many days is notified (`ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS`); 0 turns the notice off.
    new_sign_in_notice_days: u32,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl CommandService {
    pub fn new(
        store: Store,
        keyring: Keyring,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
    ) -> Self {
        let services = DomainServices {
            clock: Arc::new(domain::SystemClock),
            secrets: Arc::new(keyring.clone()),
            password_policy: policy,
        };
        Self::with_services(store, keyring, hasher, services)
    }

    /// With the domain services given (tests inject a clock).
    pub fn with_services(
        store: Store,
        keyring: Keyring,
        hasher: PasswordHasher,
        services: DomainServices,
    ) -> Self {
        Self {
            executor: Executor::new(store, services),
            hasher,
            keyring,
            directory: Arc::new(NoDirectory),
            sessions: Arc::new(NoSessions),
            new_sign_in_notice_days: 0,
        }
    }

    /// With the read models' account directory.
    pub fn with_directory(mut self, directory: Arc<dyn AccountDirectory>) -> Self {
        self.directory = directory;
        self
    }

    /// With the session store.
    pub fn with_sessions(mut self, sessions: Arc<dyn SessionStore>) -> Self {
        self.sessions = sessions;
        self
    }

    /// With the new-sign-in notice for clients unseen in `days` days (0: off, the default).
    pub fn with_new_sign_in_notice_days(mut self, days: u32) -> Self {
        self.new_sign_in_notice_days = days;
        self
    }

    pub(crate) fn new_sign_in_notice_days(&self) -> u32 {
        self.new_sign_in_notice_days
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub(crate) fn directory(&self) -> &dyn AccountDirectory {
        self.directory.as_ref()
    }

    pub(crate) fn sessions(&self) -> &dyn SessionStore {
        self.sessions.as_ref()
    }

    /// Now, by the injected clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.executor.services().clock.now()
    }

    /// Counts one code (or message) to `target` for `purpose`, refusing per `limit`.
    pub async fn admit_send(
        &self,
        target: &str,
        purpose: &str,
        limit: TargetLimit,
    ) -> Result<(), ServiceError> {
        self.store()
            .admit_send(target, purpose, limit, self.now())
            .await?
            .map_err(ServiceError::RateLimited)
    }

    pub fn store(&self) -> &Store {
        self.executor.store()
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Idempotency-Key records, as of now by the injected clock.
    pub fn idempotency(&self) -> Idempotency<'_> {
        Idempotency::new(self.store(), &self.keyring, self.now())
    }

    pub fn policy(&self) -> &PasswordPolicy {
        &self.executor.services().password_policy
    }

    /// The account `id` as the store holds it now.
    pub async fn account(&self, id: &AccountId) -> Result<Loaded<Account>, StoreError> {
        self.executor.load::<Account>(id.as_str()).await
    }

    /// Account `id` as of stream sequence `head` at least: from the executor's memo without a
    /// read when the memo is that far, else read as [`Self::account`] does. For a read whose
    /// caller learnt the head in a query it made anyway (the session lookup).
    pub async fn account_as_of(
        &self,
        id: &AccountId,
        head: u64,
    ) -> Result<Loaded<Account>, StoreError> {
        self.executor.load_as_of::<Account>(id.as_str(), head).await
    }

    /// Account `id` from this process's memo when `passes` holds for it (no read), else read
    /// from the store: for prechecks whose refusal must be confirmed on the stored stream (the
    /// change that makes them pass may have been made through another process). A precheck only
    /// saves work: the executor decides every command on the stream as stored.
    pub(crate) async fn account_checked(
        &self,
        id: &AccountId,
        passes: impl Fn(&Account) -> bool,
    ) -> Result<Loaded<Account>, StoreError> {
        let remembered = self.account_as_of(id, 0).await?;
        if passes(&remembered.state) {
            return Ok(remembered);
        }
        self.account(id).await
    }

    /// Runs an account command; a recorded refusal (wrong code, wrong password) is returned as
    /// its error after its events are stored.
    pub async fn execute(
        &self,
        id: &AccountId,
        command: AccountCommand,
        context: &CommandContext,
    ) -> Result<Committed<Account>, ServiceError> {
        let resolved;
        let context = if context.actor == Actor::Anonymous {
            resolved = CommandContext {
                actor: Actor::Account(id.as_str().to_owned()),
                ..context.clone()
            };
            &resolved
        } else {
            context
        };
        let committed = match self
            .executor
            .execute::<Account>(id.as_str(), command, context)
            .await
        {
            Ok(committed) => committed,
            Err(e) => {
                let label = match &e {
                    CommandError::Domain(_) => "refused",
                    CommandError::Store(_) => "error",
                };
                metrics::counter!("accountd_commands_total", "outcome" => label).increment(1);
                return Err(e.into());
            }
        };
        let outcome = match rejection(&committed.events) {
            Some(refusal) => Err(refusal.into()),
            None => Ok(committed),
        };
        let label = if outcome.is_ok() { "ok" } else { "refused" };
        metrics::counter!("accountd_commands_total", "outcome" => label).increment(1);
        outcome
    }

    /// Sign-up by email: claims the login email, takes the next account id, hashes the password
    /// and registers the account. The claim is released if registration does not commit.
    pub async fn sign_up_with_email(
        &self,
        login_email: Email,
        password: &Password,
        context: &CommandContext,
    ) -> Result<SignedUp, ServiceError> {
        let account_id = AccountId::from_number(self.store().next_account_number().await?)
            .map_err(DomainError::from)?;
        let store = self.store();
        self.claim(
            ClaimKind::LoginEmail,
            login_email.as_str(),
            account_id.as_str(),
        )
        .await?;
        let password_hash = match self.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(overloaded) => {
                store
                    .release(
                        ClaimKind::LoginEmail,
                        login_email.as_str(),
                        account_id.as_str(),
                    )
                    .await?;
                return Err(overloaded.into());
            }
        };
        let code_id = Uuid::new_v4().to_string();
        let command = AccountCommand::RegisterWithEmail {
            account_id: account_id.clone(),
            login_email: login_email.clone(),
            password_hash,
            code_id: code_id.clone(),
        };
        match self.execute(&account_id, command, context).await {
            Ok(_) => {
                store
                    .hold(
                        ClaimKind::LoginEmail,
                        login_email.as_str(),
                        account_id.as_str(),
                    )
                    .await?;
                Ok(SignedUp {
                    account_id,
                    code_id,
                })
            }
            Err(e) => {
                if let Err(release) = store
                    .release(
                        ClaimKind::LoginEmail,
                        login_email.as_str(),
                        account_id.as_str(),
                    )
                    .await
                {
                    tracing::warn!(error = %release, "could not release a failed sign-up's claim");
                }
                Err(e)
            }
        }
    }

    /// Claims `value` of `kind` for `owner` (DESIGN §3.6): exactly one of concurrent claimants
    /// wins; the others get `Conflict`. A stale claim whose owner's command never committed is
    /// taken over; one whose owner does hold the value is marked held.
    pub async fn claim(
        &self,
        kind: ClaimKind,
        value: &str,
        owner: &str,
    ) -> Result<(), ServiceError> {
        for _ in 0..3 {
            match self.store().try_claim(kind, value, owner).await? {
                ClaimAttempt::Ours => return Ok(()),
                ClaimAttempt::Taken => return Err(DomainError::Conflict.into()),
                ClaimAttempt::Stale { owner: stale } => {
                    let holds = self.holds(&stale, kind, value).await?;
                    self.store()
                        .resolve_stale(kind, value, &stale, holds)
                        .await?;
                    if holds {
                        return Err(DomainError::Conflict.into());
                    }
                }
            }
        }
        Err(DomainError::Conflict.into())
    }

    /// Whether account `owner`'s current state holds `value` as a `kind`.
    async fn holds(&self, owner: &str, kind: ClaimKind, value: &str) -> Result<bool, StoreError> {
        let account = self.executor.load::<Account>(owner).await?.state;
        Ok(match kind {
            ClaimKind::LoginEmail => account
                .login_email
                .as_ref()
                .is_some_and(|e| e.as_str() == value),
            ClaimKind::LoginMobile => account
                .login_mobile
                .as_ref()
                .is_some_and(|m| m.as_str() == value),
            ClaimKind::ServerIp => account
                .servers
                .iter()
                .any(|s| s.public_ip.as_str() == value),
            ClaimKind::InstanceId => account.used_instance_ids.iter().any(|i| i == value),
        })
    }

    /// A password check of `candidate` against the account's current password.
    pub async fn check_password(
        &self,
        account: &Account,
        candidate: &str,
    ) -> Result<PasswordCheck, Overloaded> {
        let matches = match &account.password {
            Some(current) => self.hasher.verify(candidate, &current.hash).await?,
            None => false,
        };
        Ok(PasswordCheck {
            against_version: account.password_version(),
            matches,
        })
    }

    /// Step-up by password in one go (start and confirm), for the session `session`.
    pub async fn verify_identity_with_password(
        &self,
        id: &AccountId,
        session: &SessionId,
        candidate: &str,
        context: &CommandContext,
    ) -> Result<Committed<Account>, ServiceError> {
        let verification_id = Uuid::new_v4().to_string();
        self.retry_on_stale_check(|| async {
            let loaded = self.account(id).await?;
            loaded.state.step_up_target(VerificationMethod::Password)?;
            let check = self.check_password(&loaded.state, candidate).await?;
            let command = AccountCommand::ConfirmIdentityWithPassword {
                verification_id: verification_id.clone(),
                session_id: session.clone(),
                check,
            };
            self.execute(id, command, context).await
        })
        .await
    }

    /// Re-runs a flow whose password check raced with a password change.
    pub(crate) async fn retry_on_stale_check<T, F, Fut>(
        &self,
        mut flow: F,
    ) -> Result<T, ServiceError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        for _ in 0..3 {
            match flow().await {
                Err(ServiceError::Domain(DomainError::StalePasswordCheck)) => continue,
                other => return other,
            }
        }
        flow().await
    }
}
