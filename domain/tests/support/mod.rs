//! Fixtures shared by the account, challenge and recovery tests: a clock the test moves, a
//! deterministic stand-in for the secrets (codes and tokens the test chooses, readable digests),
//! and a [`Story`] that builds an account's history by running commands through the real
//! decisions, so `given` lists are what the aggregate itself would have recorded.
#![allow(dead_code)] // Each test file uses its own share of the fixtures.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use cqrs_es::Aggregate;

use domain::account::{ProtectionLink, VerificationMethod};
use domain::codes::binding;
use domain::password::PasswordPolicy;
use domain::services::ResetToken;
use domain::values::{AccountId, Email, Mobile, ServerIp, VerificationCode};
use domain::{
    Account, AccountCommand, AccountEvent, Channel, Clock, CodePurpose, Digest, DomainError,
    DomainServices, PasswordCheck, PasswordHash, ReuseCheck, Sealed, Secrets, SessionId,
};

pub const ACCOUNT_ID: &str = "100000000001";
pub const LOGIN_EMAIL: &str = "a@example.com";
pub const LOGIN_MOBILE: &str = "+8613800138000";
pub const OTHER_MOBILE: &str = "+8613900139000";
pub const THIRD_MOBILE: &str = "+8613700137000";
pub const FIRST_HASH: &str = "phc-1";
pub const DEFAULT_CODE: &str = "123456";
pub const DEFAULT_TOKEN: &str = "token-1";

/// The instant every story starts at, and the clock the test moves (the test kit's).
pub use testkit::{t0, TestClock};

/// Deterministic secrets: the next code and token are whatever the test set, digests are
/// readable strings of what they bind, and sealing only tags the plaintext.
#[derive(Debug)]
pub struct TestSecrets {
    code: Mutex<String>,
    token: Mutex<String>,
}

impl Default for TestSecrets {
    fn default() -> Self {
        Self {
            code: Mutex::new(DEFAULT_CODE.to_owned()),
            token: Mutex::new(DEFAULT_TOKEN.to_owned()),
        }
    }
}

impl TestSecrets {
    pub fn set_code(&self, code: &str) {
        *self.code.lock().unwrap() = code.to_owned();
    }

    pub fn set_token(&self, token: &str) {
        *self.token.lock().unwrap() = token.to_owned();
    }
}

impl Secrets for TestSecrets {
    fn new_code(&self) -> VerificationCode {
        VerificationCode::parse(&self.code.lock().unwrap()).expect("tests set six-digit codes")
    }

    fn code_digest(&self, binding: &str, code: &VerificationCode) -> Digest {
        Digest::from_hex(format!("{binding}|{}", code.as_str()))
    }

    fn new_reset_token(&self) -> ResetToken {
        ResetToken::new(self.token.lock().unwrap().clone())
    }

    fn token_digest(&self, token: &str) -> Digest {
        token_digest(token)
    }

    fn seal(&self, plaintext: &str) -> Sealed {
        sealed(plaintext)
    }
}

/// What [`TestSecrets`] stores for a reset token.
pub fn token_digest(token: &str) -> Digest {
    Digest::from_hex(format!("sha:{token}"))
}

/// The protection token [`TestSecrets`] mints for account [`ACCOUNT_ID`] when its next token
/// is `random`.
pub fn protection_token(random: &str) -> String {
    format!("{ACCOUNT_ID}.{random}")
}

/// The link a change's event carries when minted at `at` from the next token `random`.
pub fn link(random: &str, at: DateTime<Utc>) -> ProtectionLink {
    ProtectionLink {
        token_digest: token_digest(&protection_token(random)),
        sealed_token: sealed(&protection_token(random)),
        expires_at: at + Duration::days(7),
    }
}

/// What [`TestSecrets`] seals a secret into.
pub fn sealed(plaintext: &str) -> Sealed {
    Sealed {
        key_id: "k1".into(),
        ciphertext: format!("sealed:{plaintext}"),
    }
}

/// Services at a fixed `now`, with the default test secrets and the spec's password policy.
pub fn services(now: DateTime<Utc>) -> DomainServices {
    services_with(
        Arc::new(TestClock::new(now)),
        Arc::new(TestSecrets::default()),
    )
}

pub fn services_with(clock: Arc<TestClock>, secrets: Arc<TestSecrets>) -> DomainServices {
    DomainServices {
        clock,
        secrets,
        password_policy: PasswordPolicy::default(),
    }
}

// ---- values -------------------------------------------------------------------------------

pub fn account_id() -> AccountId {
    AccountId::parse(ACCOUNT_ID).unwrap()
}

pub fn mobile(s: &str) -> Mobile {
    Mobile::parse(s).unwrap()
}

pub fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

pub fn ip(s: &str) -> ServerIp {
    ServerIp::parse(s).unwrap()
}

pub fn code(s: &str) -> VerificationCode {
    VerificationCode::parse(s).unwrap()
}

pub fn sid(s: &str) -> SessionId {
    SessionId::new(s)
}

pub fn hash(s: &str) -> PasswordHash {
    PasswordHash::from_phc(s)
}

pub fn matching(version: u32) -> PasswordCheck {
    PasswordCheck {
        against_version: version,
        matches: true,
    }
}

pub fn not_matching(version: u32) -> PasswordCheck {
    PasswordCheck {
        against_version: version,
        matches: false,
    }
}

pub fn fresh(version: u32) -> ReuseCheck {
    ReuseCheck {
        against_version: version,
        reused: false,
    }
}

pub fn reused(version: u32) -> ReuseCheck {
    ReuseCheck {
        against_version: version,
        reused: true,
    }
}

// ---- folding and running ------------------------------------------------------------------

/// The state the aggregate reaches from `events`, through its own `apply`.
pub fn fold(events: &[AccountEvent]) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event.clone());
    }
    account
}

/// Runs `command` on the account built from `given`, through the test framework.
pub fn run(
    services: DomainServices,
    given: &[AccountEvent],
    command: AccountCommand,
) -> Result<Vec<AccountEvent>, DomainError> {
    TestFramework::<Account>::with(services)
        .given(given.to_vec())
        .when(command)
        .inspect_result()
}

// ---- stories ------------------------------------------------------------------------------

/// An account's history built by running commands through the aggregate, with the clock and
/// the secrets the test controls.
pub struct Story {
    pub clock: Arc<TestClock>,
    pub secrets: Arc<TestSecrets>,
    pub events: Vec<AccountEvent>,
}

impl Default for Story {
    fn default() -> Self {
        Self::new()
    }
}

impl Story {
    /// No account yet, at [`t0`].
    pub fn new() -> Self {
        Self {
            clock: Arc::new(TestClock::new(t0())),
            secrets: Arc::new(TestSecrets::default()),
            events: Vec::new(),
        }
    }

    /// An account registered by email at [`t0`]: login and (unverified) contact email
    /// `a@example.com`, password hash `phc-1`, and the sign-up code `123456` pending.
    pub fn email_account() -> Self {
        let mut story = Self::new();
        story.exec(register_with_email());
        story
    }

    /// An account registered by mobile at [`t0`]: login, recovery and contact mobile
    /// `+8613800138000`, no password.
    pub fn mobile_account() -> Self {
        let mut story = Self::new();
        story.exec(register_with_mobile());
        story
    }

    pub fn services(&self) -> DomainServices {
        services_with(self.clock.clone(), self.secrets.clone())
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn set_now(&self, now: DateTime<Utc>) {
        self.clock.set(now);
    }

    /// The code the next issued code will be.
    pub fn next_code(&self, code: &str) {
        self.secrets.set_code(code);
    }

    /// The token the next reset token will be.
    pub fn next_token(&self, token: &str) {
        self.secrets.set_token(token);
    }

    /// The test framework, given this story's events, at the story's clock.
    pub fn given(&self) -> AggregateTestExecutor<Account> {
        TestFramework::<Account>::with(self.services()).given(self.events.clone())
    }

    /// What `command` decides now, without recording it.
    pub fn run(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, DomainError> {
        self.given().when(command).inspect_result()
    }

    /// Runs `command`, records its events and returns them; refused commands record nothing.
    pub fn try_exec(&mut self, command: AccountCommand) -> Result<Vec<AccountEvent>, DomainError> {
        let events = self.run(command)?;
        self.events.extend(events.iter().cloned());
        Ok(events)
    }

    /// Runs a command that must be accepted, records its events and returns them.
    pub fn exec(&mut self, command: AccountCommand) -> Vec<AccountEvent> {
        let label = format!("{command:?}");
        self.try_exec(command)
            .unwrap_or_else(|e| panic!("setup command {label} was refused: {e:?}"))
    }

    /// The state folded from the story's events.
    pub fn state(&self) -> Account {
        fold(&self.events)
    }

    /// A step-up of `session` now: by SMS when the account has a recovery mobile (the code is
    /// the next code), else by password.
    pub fn step_up(&mut self, session: &str) -> Vec<AccountEvent> {
        let state = self.state();
        if state.recovery_mobile.is_some() {
            self.step_up_by_sms(session)
        } else {
            self.step_up_by_password(session)
        }
    }

    pub fn step_up_by_sms(&mut self, session: &str) -> Vec<AccountEvent> {
        let verification_id = format!("v-{session}-{}", self.events.len());
        self.exec(AccountCommand::StartIdentityVerification {
            verification_id: verification_id.clone(),
            method: VerificationMethod::Sms,
            session_id: sid(session),
        });
        let code = current_code(&self.secrets);
        self.exec(AccountCommand::ConfirmIdentityWithCode {
            verification_id,
            session_id: sid(session),
            code,
        })
    }

    pub fn step_up_by_password(&mut self, session: &str) -> Vec<AccountEvent> {
        let version = self.state().password_version();
        self.exec(AccountCommand::ConfirmIdentityWithPassword {
            verification_id: format!("v-{session}-{}", self.events.len()),
            session_id: sid(session),
            check: matching(version),
        })
    }

    /// A wrong password at sign-in, now.
    pub fn fail_sign_in(&mut self) -> Vec<AccountEvent> {
        let version = self.state().password_version();
        self.exec(AccountCommand::SignInWithPassword {
            check: not_matching(version),
            session_id: sid("sign-in"),
            new_client: None,
        })
    }

    /// A right password at sign-in, now.
    pub fn sign_in(&mut self) -> Vec<AccountEvent> {
        let version = self.state().password_version();
        self.exec(AccountCommand::SignInWithPassword {
            check: matching(version),
            session_id: sid("sign-in"),
            new_client: None,
        })
    }

    /// Changes the password to `new_hash` now (steps up session `pw` first).
    pub fn change_password(&mut self, new_hash: &str) -> Vec<AccountEvent> {
        self.step_up("pw");
        let version = self.state().password_version();
        self.exec(AccountCommand::ChangePassword {
            session_id: sid("pw"),
            current: matching(version),
            reuse: fresh(version),
            new_hash: hash(new_hash),
        })
    }

    /// Gives the account a verified recovery mobile through request and confirmation.
    pub fn set_recovery_mobile(&mut self, value: &str) {
        self.step_up("rm");
        self.exec(AccountCommand::RequestRecoveryMobileChange {
            session_id: sid("rm"),
            mobile: mobile(value),
            code_id: "c-rm".into(),
        });
        let code = current_code(&self.secrets);
        self.exec(AccountCommand::ConfirmRecoveryChange {
            channel: domain::Channel::Sms,
            code,
        });
    }
}

/// The code [`TestSecrets`] hands out at the moment.
pub fn current_code(secrets: &TestSecrets) -> VerificationCode {
    secrets.new_code()
}

pub fn register_with_email() -> AccountCommand {
    AccountCommand::RegisterWithEmail {
        account_id: account_id(),
        login_email: email(LOGIN_EMAIL),
        password_hash: hash(FIRST_HASH),
        code_id: "c-signup".into(),
    }
}

pub fn register_with_mobile() -> AccountCommand {
    AccountCommand::RegisterWithMobile {
        account_id: account_id(),
        mobile: mobile(LOGIN_MOBILE),
    }
}

/// The events of an account registered by email at `at`.
pub fn registered_by_email(at: DateTime<Utc>) -> Vec<AccountEvent> {
    run(services(at), &[], register_with_email()).unwrap()
}

/// The events of an account registered by mobile at `at`.
pub fn registered_by_mobile(at: DateTime<Utc>) -> Vec<AccountEvent> {
    run(services(at), &[], register_with_mobile()).unwrap()
}

/// The event of a step-up of `session` by password at `at` (for an account with a password).
pub fn stepped_up(session: &str, at: DateTime<Utc>) -> AccountEvent {
    AccountEvent::IdentityVerified {
        verification_id: format!("v-{session}"),
        method: VerificationMethod::Password,
        session_id: sid(session),
        verified_until: at + Duration::minutes(10),
    }
}

/// The event that issues code `code_value` (as [`TestSecrets`] digests and seals it) to
/// `target` for account [`ACCOUNT_ID`] at `at`.
pub fn code_issued(
    purpose: CodePurpose,
    channel: Channel,
    target: &str,
    code_id: &str,
    bound_to: Option<&str>,
    code_value: &str,
    at: DateTime<Utc>,
) -> AccountEvent {
    AccountEvent::VerificationCodeIssued {
        code_id: code_id.into(),
        purpose,
        channel,
        target: target.into(),
        code_digest: Digest::from_hex(format!(
            "{}|{code_value}",
            binding(ACCOUNT_ID, purpose, target, code_id)
        )),
        sealed_code: sealed(code_value),
        expires_at: at + Duration::minutes(5),
        bound_to: bound_to.map(str::to_owned),
    }
}

/// The `VerificationCodeIssued` among `events` (panics when there is none).
pub fn issued_code(events: &[AccountEvent]) -> AccountEvent {
    events
        .iter()
        .find(|e| matches!(e, AccountEvent::VerificationCodeIssued { .. }))
        .cloned()
        .expect("a code was issued")
}

/// Every gated command, for session `session`.
pub fn gated_commands(session: &str) -> Vec<AccountCommand> {
    vec![
        AccountCommand::ChangeContactMobile {
            session_id: sid(session),
            mobile: mobile(OTHER_MOBILE),
            code_id: "c-g1".into(),
        },
        AccountCommand::ChangeContactEmail {
            session_id: sid(session),
            email: email("b@example.com"),
            code_id: "c-g2".into(),
        },
        AccountCommand::RequestRecoveryMobileChange {
            session_id: sid(session),
            mobile: mobile(OTHER_MOBILE),
            code_id: "c-g3".into(),
        },
        AccountCommand::RequestRecoveryEmailChange {
            session_id: sid(session),
            email: email("r@example.com"),
            code_id: "c-g4".into(),
        },
        AccountCommand::ChangePassword {
            session_id: sid(session),
            current: matching(1),
            reuse: fresh(1),
            new_hash: hash("phc-2"),
        },
    ]
}
