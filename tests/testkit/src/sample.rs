//! Deterministic, realistic account histories for tests and benchmarks.
//!
//! [`history`] drives real [`AccountCommand`]s through the aggregate's own decisions
//! (`Aggregate::handle`), so every event it returns is one the account could really have
//! recorded, in an order it could really have recorded them: registrations by email and by
//! mobile, contact changes and verifications, step-ups (by password or by SMS code), recovery
//! mobile and email changes (requested, mostly confirmed), login-email bindings, sign-ins (a few
//! failed), server IPs assigned and released, reset links issued and used, password changes and
//! 90-day reminders.
//!
//! Values come from small shared pools so that lookups have something to find: several
//! accounts hold the same recovery mobile at once and mobiles move from one account to another,
//! and server IPs are released by one account and assigned to another (never held by two at
//! once, as the command layer's claim guarantees). Sessions of one to four commands of one
//! account are interleaved across accounts in a seeded random order, so the global order mixes
//! the streams.
//!
//! Everything is deterministic for a given `(accounts, events, seed)`: a fixed-step clock, a
//! seeded generator and a non-cryptographic [`Secrets`] (this is sample data; nothing here is
//! secret). No I/O; the generator runs on a thread of its own (see `poll_ready`).

use std::future::Future;
use std::ops::Range;
use std::pin::pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use sha2::{Digest as _, Sha256};

use domain::account::{Account, AccountCommand, AccountEvent, VerificationMethod};
use domain::codes::Channel;
use domain::password::PasswordPolicy;
use domain::services::{
    Clock, Digest, DomainServices, PasswordCheck, PasswordHash, ResetToken, ReuseCheck, Sealed,
    Secrets, SessionId,
};
use domain::values::{AccountId, Email, Mobile, ServerIp, VerificationCode};

/// One event of a generated history, with the stream it belongs to and its place there.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEvent {
    /// The account ID (`100000000001` upward).
    pub aggregate_id: String,
    /// The event's sequence in its stream, from 1.
    pub sequence: u64,
    pub event: AccountEvent,
}

/// When every generated history starts: 2025-01-01T00:00:00Z.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// How far the clock moves for each command: long enough that a history of a million events
/// spans more than a year (so 90-day reminders happen), short enough that every code (alive 5
/// minutes) and step-up (10 minutes) is used within its life: a session uses each one at the
/// command right after the one that issued it.
pub const STEP: Duration = Duration::seconds(60);

/// Exactly `events` events over (at most) `accounts` accounts with IDs from `100000000001`
/// upward, the same for the same arguments.
///
/// Accounts are registered over the first half of the history (each account's first event is
/// its `AccountRegistered`), so every one of them appears when `events` is at least about three
/// times `accounts`; with fewer events the later accounts are never registered. The last
/// command may be cut short to stop at exactly `events`.
///
/// # Panics
/// When `accounts` is 0 but `events` is not (there is no stream to put them in).
pub fn history(accounts: usize, events: usize, seed: u64) -> Vec<SampleEvent> {
    assert!(
        accounts > 0 || events == 0,
        "a history with events needs at least one account"
    );
    if events == 0 {
        return Vec::new();
    }
    // On a thread of its own, so that no async runtime's cooperative budget applies to the
    // futures `poll_ready` drives (see there).
    std::thread::scope(|scope| {
        scope
            .spawn(|| Generator::new(accounts, events, seed).run())
            .join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Drives a future that never waits to its output with a single poll.
///
/// Used for `Aggregate::handle` and `EventSink::collect` of the account aggregate, which cannot
/// return `Pending`:
/// - `handle` calls the synchronous `decide`, then `EventSink::write` for each event, which
///   applies it (synchronously) and pushes it under the sink's `tokio::sync::Mutex`;
/// - that mutex belongs to a sink created for one command and never shared, so it is never
///   held when locked: the semaphore behind it grants the permit on the first poll;
/// - tokio's lock also consumes cooperative-scheduling budget, and could answer `Pending` when
///   a runtime task's budget is spent; but [`history`] runs the generator on a fresh thread,
///   where no runtime has set a budget, so the budget is unconstrained;
/// - `collect` only takes the mutex's inner value, without any await.
///
/// So the first poll is always `Ready`; a `Pending` would be a broken invariant, not a wait.
fn poll_ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a future that cannot wait returned Pending"),
    }
}

/// A clock that moves only when the generator ticks it, by [`STEP`].
#[derive(Debug)]
struct StepClock {
    ticks: AtomicI64,
}

impl StepClock {
    fn tick(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

impl Clock for StepClock {
    fn now(&self) -> DateTime<Utc> {
        start() + STEP * i32::try_from(self.ticks.load(Ordering::Relaxed)).unwrap_or(i32::MAX)
    }
}

/// SplitMix64: small, fast and good enough to pick sample data.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Deterministic stand-ins for the keyring: codes and tokens from a seeded sequence, SHA-256
/// digests, and a reversible "seal" (XOR and hex) the generator opens to answer its own codes.
#[derive(Debug)]
struct SampleSecrets {
    state: AtomicU64,
}

/// The key id of [`SampleSecrets`]' seals.
const SAMPLE_KEY_ID: &str = "sample";
const SEAL_MASK: u8 = 0x5a;

impl SampleSecrets {
    fn next(&self) -> u64 {
        // The generator runs on one thread, so the order of calls (and the values) is fixed.
        let state = self.state.load(Ordering::Relaxed);
        let mut mix = SplitMix(state);
        let value = mix.next();
        self.state.store(mix.0, Ordering::Relaxed);
        value
    }

    fn open(sealed: &Sealed) -> Option<String> {
        let bytes = hex::decode(&sealed.ciphertext).ok()?;
        String::from_utf8(bytes.into_iter().map(|b| b ^ SEAL_MASK).collect()).ok()
    }
}

impl Secrets for SampleSecrets {
    fn new_code(&self) -> VerificationCode {
        let n = u32::try_from(self.next() % 1_000_000).unwrap_or_default();
        VerificationCode::from_number(n).unwrap_or_else(|| unreachable!("below one million"))
    }

    fn code_digest(&self, binding: &str, code: &VerificationCode) -> Digest {
        let mut hash = Sha256::new();
        hash.update(b"sample-code\0");
        hash.update(binding.as_bytes());
        hash.update([0]);
        hash.update(code.as_str().as_bytes());
        Digest::from_hex(hex::encode(hash.finalize()))
    }

    fn new_reset_token(&self) -> ResetToken {
        ResetToken::new(format!("rt{:016x}{:016x}", self.next(), self.next()))
    }

    fn token_digest(&self, token: &str) -> Digest {
        Digest::from_hex(hex::encode(Sha256::digest(token.as_bytes())))
    }

    fn seal(&self, plaintext: &str) -> Sealed {
        Sealed {
            key_id: SAMPLE_KEY_ID.to_owned(),
            ciphertext: hex::encode(plaintext.bytes().map(|b| b ^ SEAL_MASK).collect::<Vec<_>>()),
        }
    }
}

/// One generated account.
struct Slot {
    id: AccountId,
    state: Account,
    /// The sequence of its last emitted event.
    sequence: u64,
    /// Sessions opened so far (for session ids).
    sessions: u64,
}

/// What a picked account does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    SignIn,
    FailedSignIn,
    ContactMobile,
    ContactEmail,
    RecoveryMobile,
    RecoveryEmail,
    AssignServer,
    ReleaseServer,
    ResetLinkOnly,
    Reset,
    ChangePassword,
    BindLoginEmail,
    Reminder,
}

/// The most servers one account holds at once.
const MAX_SERVERS: usize = 3;

struct Generator {
    rng: SplitMix,
    clock: Arc<StepClock>,
    services: DomainServices,
    slots: Vec<Slot>,
    /// How many accounts the history is spread over.
    accounts: usize,
    /// How many events it has.
    budget: usize,
    out: Vec<SampleEvent>,
    /// Recovery and contact mobiles: a small pool shared by every account.
    mobiles: Vec<Mobile>,
    contact_emails: Vec<Email>,
    recovery_emails: Vec<Email>,
    ips: Vec<ServerIp>,
    /// Which account holds each IP of the pool (an IP belongs to at most one account).
    ip_holder: Vec<Option<usize>>,
    /// For instance ids, verification and code ids, and password hashes.
    counter: u64,
}

impl Generator {
    fn new(accounts: usize, events: usize, seed: u64) -> Self {
        let clock = Arc::new(StepClock {
            ticks: AtomicI64::new(0),
        });
        let secrets = Arc::new(SampleSecrets {
            state: AtomicU64::new(seed ^ 0x5eed_c0de_0000_0001),
        });
        let services = DomainServices {
            clock: clock.clone(),
            secrets,
            password_policy: PasswordPolicy::default(),
        };
        let pool = |divisor: usize, max: usize| (accounts / divisor).clamp(4, max);
        let mobiles = (0..pool(8, 1000))
            .map(|i| parse_mobile(&format!("+86137{i:08}")))
            .collect();
        let contact_emails = (0..pool(10, 1000))
            .map(|i| parse_email(&format!("contact{i}@example.net")))
            .collect();
        let recovery_emails = (0..pool(10, 1000))
            .map(|i| parse_email(&format!("backup{i}@example.org")))
            .collect();
        let ip_count = pool(4, 16_000);
        let ips = (0..ip_count)
            .map(|i| {
                let ip = format!("198.{}.{}.{}", 18 + i / 62_500, i / 250 % 250, i % 250 + 1);
                ServerIp::parse(&ip).unwrap_or_else(|_| unreachable!("198.18/15 is unicast"))
            })
            .collect();
        Self {
            rng: SplitMix(seed),
            clock,
            services,
            slots: Vec::with_capacity(accounts.min(events)),
            accounts,
            budget: events,
            out: Vec::with_capacity(events),
            mobiles,
            contact_emails,
            recovery_emails,
            ips,
            ip_holder: vec![None; ip_count],
            counter: 0,
        }
    }

    fn run(mut self) -> Vec<SampleEvent> {
        while !self.full() {
            let registered = self.slots.len();
            // Registrations are spread over the first half of the history, after a first few
            // at once (so the first sessions already alternate between accounts).
            let due = registered * self.budget / (2 * self.accounts);
            if registered < self.accounts && (registered < 10 || self.out.len() >= due) {
                self.register();
            } else {
                let k = self.rng.below(registered);
                self.act(k);
            }
        }
        self.out
    }

    fn full(&self) -> bool {
        self.out.len() >= self.budget
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{:08}", self.counter)
    }

    fn new_password_hash(&mut self) -> PasswordHash {
        self.counter += 1;
        PasswordHash::from_phc(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FtcGxlLXNhbHQ${:043}",
            self.counter
        ))
    }

    /// Runs `command` on account `k` at the next tick and emits its events (cut short at the
    /// budget). Returns where they are in the output, or `None` once the budget is spent.
    fn run_command(&mut self, k: usize, command: AccountCommand) -> Option<Range<usize>> {
        if self.full() {
            return None;
        }
        self.clock.tick();
        let slot = &mut self.slots[k];
        let sink = EventSink::default();
        let decided = poll_ready(slot.state.handle(command, &self.services, &sink));
        // Every command is chosen from what the state allows (the checks in `act` mirror the
        // decisions), so a refusal means this generator is wrong; its tests would show it.
        if let Err(refusal) = decided {
            panic!(
                "the sample generator issued a command account {} refused: {refusal}",
                slot.id
            );
        }
        let events = poll_ready(sink.collect());
        let first = self.out.len();
        for event in events {
            if self.out.len() >= self.budget {
                break;
            }
            slot.sequence += 1;
            self.out.push(SampleEvent {
                aggregate_id: slot.id.as_str().to_owned(),
                sequence: slot.sequence,
                event,
            });
        }
        let emitted = first..self.out.len();
        (!self.full()).then_some(emitted)
    }

    /// The code sent by the last `VerificationCodeIssued` in `range`, opened from its sealed copy
    /// (as the notifier would).
    fn code_in(&self, range: Range<usize>) -> Option<VerificationCode> {
        self.out[range].iter().rev().find_map(|e| match &e.event {
            AccountEvent::VerificationCodeIssued { sealed_code, .. } => {
                SampleSecrets::open(sealed_code).and_then(|c| VerificationCode::parse(&c).ok())
            }
            _ => None,
        })
    }

    fn register(&mut self) {
        let k = self.slots.len();
        let number = AccountId::FIRST + k as u64;
        let id = AccountId::from_number(number)
            .unwrap_or_else(|_| panic!("{number} is beyond the last 12-digit account id"));
        self.slots.push(Slot {
            id: id.clone(),
            state: Account::default(),
            sequence: 0,
            sessions: 0,
        });
        if self.rng.chance(50) {
            let code_id = self.next_id("code");
            let password_hash = self.new_password_hash();
            let command = AccountCommand::RegisterWithEmail {
                account_id: id,
                login_email: parse_email(&format!("user{number}@example.com")),
                password_hash,
                code_id,
            };
            let Some(issued) = self.run_command(k, command) else {
                return;
            };
            if self.rng.chance(70) {
                if let Some(code) = self.code_in(issued) {
                    self.run_command(
                        k,
                        AccountCommand::VerifyContact {
                            channel: Channel::Email,
                            code,
                        },
                    );
                }
            }
        } else {
            // Login mobiles are unique across accounts (the command layer claims them).
            let mobile = parse_mobile(&format!("+86139{:08}", number % 100_000_000));
            self.run_command(
                k,
                AccountCommand::RegisterWithMobile {
                    account_id: id,
                    mobile,
                },
            );
        }
    }

    /// The actions account `k` can take now, with their weights.
    fn choices(&self, k: usize) -> Vec<(u32, Action)> {
        let state = &self.slots[k].state;
        let has_password = state.password.is_some();
        let has_login_email = state.login_email.is_some();
        let mut choices = vec![
            (3, Action::SignIn),
            (2, Action::ContactMobile),
            (1, Action::ContactEmail),
            (4, Action::RecoveryMobile),
            (1, Action::RecoveryEmail),
            (1, Action::Reminder),
        ];
        // Never near the lock: its window would refuse the step-ups that follow.
        if has_password && state.failed_password_checks.len() < 3 {
            choices.push((1, Action::FailedSignIn));
        }
        if state.servers.len() < MAX_SERVERS && self.ip_holder.iter().any(Option::is_none) {
            choices.push((3, Action::AssignServer));
        }
        if !state.servers.is_empty() {
            choices.push((3, Action::ReleaseServer));
        }
        if has_login_email {
            choices.push((1, Action::ResetLinkOnly));
            choices.push((1, Action::Reset));
        }
        if has_login_email && has_password {
            choices.push((1, Action::ChangePassword));
        }
        if !has_login_email && state.pending_login_email.is_none() {
            choices.push((2, Action::BindLoginEmail));
        }
        choices
    }

    /// One session of account `k`: a few commands, then another account's turn.
    fn act(&mut self, k: usize) {
        let choices = self.choices(k);
        let total: u32 = choices.iter().map(|(w, _)| w).sum();
        let mut pick = self.rng.below(total as usize) as u32;
        let action = choices
            .iter()
            .find(|(w, _)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(Action::SignIn, |(_, a)| *a);
        match action {
            Action::SignIn => self.sign_in(k, true),
            Action::FailedSignIn => self.sign_in(k, false),
            Action::ContactMobile => self.change_contact(k, Channel::Sms),
            Action::ContactEmail => self.change_contact(k, Channel::Email),
            Action::RecoveryMobile => self.change_recovery(k, Channel::Sms),
            Action::RecoveryEmail => self.change_recovery(k, Channel::Email),
            Action::AssignServer => self.assign_server(k),
            Action::ReleaseServer => self.release_server(k),
            Action::ResetLinkOnly => {
                self.run_command(k, AccountCommand::IssueResetToken);
            }
            Action::Reset => self.reset(k),
            Action::ChangePassword => self.change_password(k),
            Action::BindLoginEmail => self.bind_login_email(k),
            Action::Reminder => {
                // Records a reminder only when the password just crossed 90 days.
                self.run_command(k, AccountCommand::SendPasswordExpiryReminder);
            }
        }
    }

    fn new_session(&mut self, k: usize) -> SessionId {
        let slot = &mut self.slots[k];
        slot.sessions += 1;
        SessionId::new(format!("session-{}-{}", slot.id, slot.sessions))
    }

    fn password_check(&self, k: usize, matches: bool) -> PasswordCheck {
        PasswordCheck {
            against_version: self.slots[k].state.password_version(),
            matches,
        }
    }

    fn sign_in(&mut self, k: usize, succeeds: bool) {
        let session_id = self.new_session(k);
        let command = if self.slots[k].state.password.is_some() {
            AccountCommand::SignInWithPassword {
                check: self.password_check(k, succeeds),
                session_id,
                new_client: None,
            }
        } else {
            AccountCommand::SignInWithSms {
                session_id,
                new_client: None,
            }
        };
        self.run_command(k, command);
    }

    /// A fresh step-up for a new session: by password when the account has one, else by an
    /// SMS code to its recovery mobile (every account without a password registered by mobile,
    /// so it has one). `None` once the budget is spent.
    fn step_up(&mut self, k: usize) -> Option<SessionId> {
        let session_id = self.new_session(k);
        let verification_id = self.next_id("verification");
        if self.slots[k].state.password.is_some() {
            let check = self.password_check(k, true);
            self.run_command(
                k,
                AccountCommand::ConfirmIdentityWithPassword {
                    verification_id,
                    session_id: session_id.clone(),
                    check,
                },
            )?;
        } else {
            let issued = self.run_command(
                k,
                AccountCommand::StartIdentityVerification {
                    verification_id: verification_id.clone(),
                    method: VerificationMethod::Sms,
                    session_id: session_id.clone(),
                },
            )?;
            let code = self.code_in(issued)?;
            self.run_command(
                k,
                AccountCommand::ConfirmIdentityWithCode {
                    verification_id,
                    session_id: session_id.clone(),
                    code,
                },
            )?;
        }
        Some(session_id)
    }

    /// A value of `pool` other than `current`.
    fn pick_other<T: Clone + PartialEq>(rng: &mut SplitMix, pool: &[T], current: Option<&T>) -> T {
        loop {
            let candidate = &pool[rng.below(pool.len())];
            if Some(candidate) != current {
                return candidate.clone();
            }
        }
    }

    fn change_contact(&mut self, k: usize, channel: Channel) {
        let Some(session_id) = self.step_up(k) else {
            return;
        };
        let code_id = self.next_id("code");
        let state = &self.slots[k].state;
        let command = match channel {
            Channel::Sms => AccountCommand::ChangeContactMobile {
                session_id,
                mobile: Self::pick_other(
                    &mut self.rng,
                    &self.mobiles,
                    state.contact_mobile.as_ref().map(|c| &c.value),
                ),
                code_id,
            },
            Channel::Email => AccountCommand::ChangeContactEmail {
                session_id,
                email: Self::pick_other(
                    &mut self.rng,
                    &self.contact_emails,
                    state.contact_email.as_ref().map(|c| &c.value),
                ),
                code_id,
            },
        };
        let Some(issued) = self.run_command(k, command) else {
            return;
        };
        if self.rng.chance(70) {
            if let Some(code) = self.code_in(issued) {
                self.run_command(k, AccountCommand::VerifyContact { channel, code });
            }
        }
    }

    fn change_recovery(&mut self, k: usize, channel: Channel) {
        let Some(session_id) = self.step_up(k) else {
            return;
        };
        let code_id = self.next_id("code");
        let state = &self.slots[k].state;
        let command = match channel {
            Channel::Sms => AccountCommand::RequestRecoveryMobileChange {
                session_id,
                mobile: Self::pick_other(
                    &mut self.rng,
                    &self.mobiles,
                    state.recovery_mobile.as_ref(),
                ),
                code_id,
            },
            Channel::Email => AccountCommand::RequestRecoveryEmailChange {
                session_id,
                email: Self::pick_other(
                    &mut self.rng,
                    &self.recovery_emails,
                    state.recovery_email.as_ref(),
                ),
                code_id,
            },
        };
        let Some(issued) = self.run_command(k, command) else {
            return;
        };
        // Most changes are confirmed; the others stay pending (and count for nothing).
        if self.rng.chance(85) {
            if let Some(code) = self.code_in(issued) {
                self.run_command(k, AccountCommand::ConfirmRecoveryChange { channel, code });
            }
        }
    }

    fn assign_server(&mut self, k: usize) {
        let free: Vec<usize> = (0..self.ips.len())
            .filter(|&i| self.ip_holder[i].is_none())
            .collect();
        if free.is_empty() {
            return;
        }
        let i = free[self.rng.below(free.len())];
        let instance_id = self.next_id("ins");
        let command = AccountCommand::AssignServerIp {
            instance_id,
            ip: self.ips[i].clone(),
        };
        self.ip_holder[i] = Some(k);
        self.run_command(k, command);
    }

    fn release_server(&mut self, k: usize) {
        let servers = &self.slots[k].state.servers;
        let Some(server) = servers.get(self.rng.below(servers.len().max(1))).cloned() else {
            return;
        };
        if let Some(i) = self.ips.iter().position(|ip| *ip == server.public_ip) {
            self.ip_holder[i] = None;
        }
        self.run_command(
            k,
            AccountCommand::ReleaseServerIp {
                instance_id: server.instance_id,
            },
        );
    }

    /// A reset from the emailed link: token, a code to a verified recovery channel when there
    /// is one, and the new password.
    fn reset(&mut self, k: usize) {
        let Some(issued) = self.run_command(k, AccountCommand::IssueResetToken) else {
            return;
        };
        let Some(token_digest) = self.out[issued].iter().find_map(|e| match &e.event {
            AccountEvent::ResetTokenIssued { token_digest, .. } => Some(token_digest.clone()),
            _ => None,
        }) else {
            return;
        };
        let state = &self.slots[k].state;
        let channel = if state.recovery_mobile.is_some() {
            Some(Channel::Sms)
        } else if state.recovery_email.is_some() {
            Some(Channel::Email)
        } else {
            None
        };
        let code = match channel {
            Some(channel) => {
                let code_id = self.next_id("code");
                let Some(sent) = self.run_command(
                    k,
                    AccountCommand::SendResetCode {
                        token_digest: token_digest.clone(),
                        channel,
                        code_id,
                    },
                ) else {
                    return;
                };
                let Some(code) = self.code_in(sent) else {
                    return;
                };
                Some(code)
            }
            None => None,
        };
        let reuse = ReuseCheck {
            against_version: self.slots[k].state.password_version(),
            reused: false,
        };
        let new_hash = self.new_password_hash();
        self.run_command(
            k,
            AccountCommand::CompleteReset {
                token_digest,
                reuse,
                new_hash,
                code,
            },
        );
    }

    fn change_password(&mut self, k: usize) {
        let Some(session_id) = self.step_up(k) else {
            return;
        };
        let current = self.password_check(k, true);
        let reuse = ReuseCheck {
            against_version: current.against_version,
            reused: false,
        };
        let new_hash = self.new_password_hash();
        self.run_command(
            k,
            AccountCommand::ChangePassword {
                session_id,
                current,
                reuse,
                new_hash,
            },
        );
    }

    fn bind_login_email(&mut self, k: usize) {
        let Some(session_id) = self.step_up(k) else {
            return;
        };
        let number = self.slots[k].id.number();
        let password_hash = self.slots[k]
            .state
            .password
            .is_none()
            .then(|| self.new_password_hash());
        let code_id = self.next_id("code");
        let Some(issued) = self.run_command(
            k,
            AccountCommand::RequestLoginEmailBinding {
                session_id,
                // Unique: the command layer claims login emails.
                email: parse_email(&format!("bound{number}@example.com")),
                password_hash,
                code_id,
            },
        ) else {
            return;
        };
        if self.rng.chance(80) {
            if let Some(code) = self.code_in(issued) {
                self.run_command(k, AccountCommand::ConfirmLoginEmailBinding { code });
            }
        }
    }
}

fn parse_mobile(text: &str) -> Mobile {
    // 137 and 139 are Chinese mobile ranges for all eight digits that follow.
    Mobile::parse(text).unwrap_or_else(|e| panic!("sample mobile {text}: {e}"))
}

fn parse_email(text: &str) -> Email {
    Email::parse(text).unwrap_or_else(|e| panic!("sample email {text}: {e}"))
}

/// Writes `history` in its order through the store's own append, as the executor would have:
/// per-event metadata (event id, `occurred_at` one [`STEP`] apart from `first_at`, actor) and each
/// stream's chain hash, in appends of 5,000 events (many streams each).
pub async fn insert_chained(
    store: &commands::Store,
    history: &[SampleEvent],
    first_at: DateTime<Utc>,
) -> Result<(), commands::store::StoreError> {
    use domain::account::ACCOUNT_AGGREGATE_TYPE;
    use domain::chain::{chain_hash, CHAIN_HASH_KEY, GENESIS};
    let mut heads: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for (chunk_index, chunk) in history.chunks(5_000).enumerate() {
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, event) in chunk.iter().enumerate() {
            let n = chunk_index * 5_000 + i;
            let payload = domain::stored::to_payload(&event.event).expect("events serialize");
            let event_type = event.event.type_name();
            let occurred_at = first_at + STEP * i32::try_from(n).unwrap_or(i32::MAX);
            let mut metadata = serde_json::json!({
                "event_id": format!("00000000-0000-7000-8000-{n:012}"),
                "occurred_at": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "actor": format!("account:{}", event.aggregate_id),
            });
            let previous = heads
                .get(event.aggregate_id.as_str())
                .map_or(GENESIS, String::as_str);
            let hash = chain_hash(previous, event_type, "1", &payload, &metadata);
            metadata[CHAIN_HASH_KEY] = serde_json::Value::String(hash.clone());
            heads.insert(&event.aggregate_id, hash);
            rows.push(commands::store::SerializedEvent::new(
                event.aggregate_id.clone(),
                usize::try_from(event.sequence).expect("a sequence fits usize"),
                ACCOUNT_AGGREGATE_TYPE.to_owned(),
                event_type.to_owned(),
                "1".to_owned(),
                payload,
                metadata,
            ));
        }
        // One append of many streams: the store writes them in this order.
        (store.events())
            .append(ACCOUNT_AGGREGATE_TYPE, &rows, &[])
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::time::Instant;

    use super::*;

    fn by_stream(history: &[SampleEvent]) -> BTreeMap<&str, Vec<&SampleEvent>> {
        let mut streams: BTreeMap<&str, Vec<&SampleEvent>> = BTreeMap::new();
        for e in history {
            streams.entry(e.aggregate_id.as_str()).or_default().push(e);
        }
        streams
    }

    #[test]
    fn a_history_has_exactly_the_events_asked_for() {
        for (accounts, events) in [(1, 1), (3, 2), (10, 7), (1, 500), (50, 1_000), (200, 5_003)] {
            assert_eq!(
                history(accounts, events, 7).len(),
                events,
                "{accounts} accounts, {events} events"
            );
        }
        assert!(history(5, 0, 7).is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_history_and_another_seed_another() {
        let a = history(40, 2_000, 11);
        assert_eq!(a, history(40, 2_000, 11));
        assert_ne!(a, history(40, 2_000, 12));
    }

    #[test]
    fn every_account_starts_with_its_registration_and_numbers_its_events_from_one() {
        let accounts = 120;
        let history = history(accounts, 4_000, 3);
        let streams = by_stream(&history);
        let expected: BTreeSet<String> = (0..accounts as u64)
            .map(|k| (AccountId::FIRST + k).to_string())
            .collect();
        let ids: BTreeSet<String> = streams.keys().map(|id| id.to_string()).collect();
        assert_eq!(ids, expected);
        for (id, events) in &streams {
            assert!(
                matches!(events[0].event, AccountEvent::AccountRegistered { .. }),
                "{id} starts with {:?}",
                events[0].event.type_name()
            );
            let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
            let expected: Vec<u64> = (1..=events.len() as u64).collect();
            assert_eq!(sequences, expected, "{id}");
        }
    }

    #[test]
    fn both_kinds_of_registration_and_every_common_flow_appear() {
        let history = history(300, 20_000, 5);
        let types: BTreeSet<&str> = history.iter().map(|e| e.event.type_name()).collect();
        for expected in [
            "AccountRegistered",
            "VerificationCodeIssued",
            "IdentityVerified",
            "ContactMobileChanged",
            "ContactMobileVerified",
            "ContactEmailChanged",
            "ContactEmailVerified",
            "RecoveryMobileChangeRequested",
            "RecoveryMobileChanged",
            "RecoveryEmailChangeRequested",
            "RecoveryEmailChanged",
            "LoginEmailBindingRequested",
            "LoginEmailBound",
            "PasswordChanged",
            "ResetTokenIssued",
            "PasswordReset",
            "SignedIn",
            "SignInFailed",
            "ServerIpAssigned",
            "ServerIpReleased",
        ] {
            assert!(types.contains(expected), "no {expected} in {types:?}");
        }
        let (by_email, by_mobile) = history.iter().fold((0, 0), |(e, m), s| match &s.event {
            AccountEvent::AccountRegistered { login_email, .. } => {
                if login_email.is_some() {
                    (e + 1, m)
                } else {
                    (e, m + 1)
                }
            }
            _ => (e, m),
        });
        assert!(
            by_email > 100 && by_mobile > 100,
            "{by_email} by email, {by_mobile} by mobile"
        );
        assert!(
            !types.contains("SignInLocked"),
            "the generator keeps clear of the lock"
        );
    }

    #[test]
    fn a_long_history_sends_password_reminders() {
        // A minute a command: some 130,000 commands (about 190,000 events) pass 90 days; with
        // few events per account, many passwords stay unchanged that long.
        let history = history(25_000, 250_000, 1);
        assert!(history
            .iter()
            .any(|e| matches!(e.event, AccountEvent::PasswordExpiryReminderSent { .. })));
    }

    #[test]
    fn recovery_mobiles_are_shared_and_move_between_accounts() {
        let history = history(200, 10_000, 9);
        let mut holders: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut moved_to_another = false;
        let mut ever_held: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut shared_at_once = false;
        for e in &history {
            if let AccountEvent::RecoveryMobileChanged {
                previous, mobile, ..
            } = &e.event
            {
                if let Some(previous) = previous {
                    if let Some(set) = holders.get_mut(previous.as_str()) {
                        set.remove(&e.aggregate_id);
                    }
                }
                let now = holders.entry(mobile.as_str().to_owned()).or_default();
                now.insert(e.aggregate_id.clone());
                shared_at_once |= now.len() > 1;
                let ever = ever_held.entry(mobile.as_str().to_owned()).or_default();
                // Someone else held this mobile before and let it go.
                moved_to_another |= ever.iter().any(|other| {
                    *other != e.aggregate_id && !holders[mobile.as_str()].contains(other.as_str())
                });
                ever.insert(e.aggregate_id.clone());
            }
        }
        assert!(
            shared_at_once,
            "no recovery mobile was held by two accounts at once"
        );
        assert!(
            moved_to_another,
            "no recovery mobile moved from one account to another"
        );
    }

    #[test]
    fn a_server_ip_is_never_held_by_two_accounts_at_once_but_moves_between_them() {
        let history = history(200, 10_000, 13);
        let mut holder: HashMap<String, String> = HashMap::new();
        let mut accounts_per_ip: HashMap<String, BTreeSet<String>> = HashMap::new();
        for e in &history {
            match &e.event {
                AccountEvent::ServerIpAssigned { public_ip, .. } => {
                    let previous = holder.insert(public_ip.to_string(), e.aggregate_id.clone());
                    assert_eq!(previous, None, "{public_ip} assigned while held");
                    accounts_per_ip
                        .entry(public_ip.to_string())
                        .or_default()
                        .insert(e.aggregate_id.clone());
                }
                AccountEvent::ServerIpReleased { public_ip, .. } => {
                    assert_eq!(
                        holder.remove(public_ip.as_str()).as_deref(),
                        Some(e.aggregate_id.as_str())
                    );
                }
                _ => {}
            }
        }
        assert!(accounts_per_ip.values().any(|a| a.len() > 1));
    }

    #[test]
    fn login_emails_and_login_mobiles_belong_to_one_account_each() {
        let history = history(300, 12_000, 17);
        let mut owners: HashMap<String, String> = HashMap::new();
        for e in &history {
            let claimed = match &e.event {
                AccountEvent::AccountRegistered {
                    login_email,
                    login_mobile,
                    ..
                } => login_email
                    .as_ref()
                    .map(|m| m.as_str().to_owned())
                    .or(login_mobile.as_ref().map(|m| m.as_str().to_owned())),
                AccountEvent::LoginEmailBound { email, .. } => Some(email.as_str().to_owned()),
                _ => None,
            };
            if let Some(value) = claimed {
                let owner = owners
                    .entry(value.clone())
                    .or_insert(e.aggregate_id.clone());
                assert_eq!(*owner, e.aggregate_id, "{value} claimed twice");
            }
        }
    }

    #[test]
    fn the_global_order_interleaves_the_streams() {
        let history = history(100, 10_000, 21);
        let switches = history
            .windows(2)
            .filter(|w| w[0].aggregate_id != w[1].aggregate_id)
            .count();
        assert!(switches > history.len() / 5, "{switches} switches");
        let longest_run = history
            .chunk_by(|a, b| a.aggregate_id == b.aggregate_id)
            .map(<[_]>::len)
            .max()
            .unwrap_or_default();
        assert!(
            longest_run <= 12,
            "a run of {longest_run} events of one account"
        );
    }

    #[test]
    fn every_stream_replays_into_a_registered_account_with_the_last_values() {
        let history = history(50, 3_000, 23);
        for (id, events) in by_stream(&history) {
            let mut account = Account::default();
            for e in events {
                account.apply(e.event.clone());
            }
            assert_eq!(account.account_id().map(AccountId::as_str), Some(id));
            assert!(account.login_email.is_some() || account.login_mobile.is_some());
        }
    }

    #[test]
    fn a_sealed_sample_code_opens_to_the_code_and_does_not_show_it() {
        let secrets = SampleSecrets {
            state: AtomicU64::new(1),
        };
        let code = secrets.new_code();
        let sealed = secrets.seal(code.as_str());
        assert!(!sealed.ciphertext.contains(code.as_str()));
        assert_eq!(SampleSecrets::open(&sealed).as_deref(), Some(code.as_str()));
    }

    #[test]
    #[should_panic(expected = "cannot wait")]
    fn the_single_poll_helper_refuses_a_future_that_waits() {
        poll_ready(std::future::pending::<()>());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_history_made_inside_an_async_task_is_the_same_as_outside() {
        // Far more commands than tokio's cooperative budget (128) allows one task poll.
        let inside = history(20, 3_000, 29);
        let outside = std::thread::spawn(|| history(20, 3_000, 29))
            .join()
            .unwrap();
        assert_eq!(inside, outside);
    }

    /// Prints only (the speed is reported, not judged, in a debug build): how long a history of
    /// a million events (100,000 in a debug build) takes to generate.
    #[test]
    fn history_generation_speed_is_printed() {
        let (accounts, events) = if cfg!(debug_assertions) {
            (5_000, 100_000)
        } else {
            (50_000, 1_000_000)
        };
        let started = Instant::now();
        let history = history(accounts, events, 42);
        let elapsed = started.elapsed();
        assert_eq!(history.len(), events);
        println!(
            "sample::history: {events} events over {accounts} accounts in {:.2} s ({:.0} events/s, {} build)",
            elapsed.as_secs_f64(),
            events as f64 / elapsed.as_secs_f64(),
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
        if !cfg!(debug_assertions) {
            assert!(elapsed.as_secs() < 60, "a million events took {elapsed:?}");
        }
    }
}
