//! The notifier (SPEC §2 Notifications, §5): durable pull consumers `notifier` on
//! `ACCOUNT_EVENTS`, `NOTIFICATION_REQUESTS` and `CHALLENGE_CODES`, turning messages into email
//! and SMS, each acked only once its sends are recorded.
//!
//! Handling one message:
//! 1. **Plan** (one transaction): an account event is folded into the notifier's own copy of the
//!    account's contact values (`notifier_contacts`, compare-and-set on its last sequence) and
//!    the messages it asks for are written to the delivery log with the recipients of that
//!    moment. Events are folded strictly in sequence: an event that arrives before its
//!    predecessor is nak'ed for a moment (after `gap_timeout` a gap is accepted and logged).
//!    An event at or below the folded sequence was planned before: only its
//!    deliveries are looked at.
//! 2. **Deliver**: each row is recorded already claimed (under a lease) by the instance that
//!    plans it, or claimed on a redelivery once due or once its lease ran out; it is rendered (a
//!    sealed code or token is opened only now, through the [`Unsealer`] port), sent, and marked
//!    sent; a transient failure schedules another attempt with exponential backoff; a permanent
//!    failure or the last attempt makes the row a dead letter (and bumps
//!    `accountd_notifications_dead_letter_total`).
//! 3. **Ack** when no row is left to try; otherwise nak with the delay until the next attempt.
//!
//! So a redelivered message (nak, restart, a relay that re-published) never sends a row twice.
//!
//! # Layout
//! - [`plan`]: what each event or request sends, to whom (pure).
//! - [`templates`]: the texts, rendered at send time.
//! - [`deliveries`]: the contact fold and the delivery log (tables of migration 1002).
//! - [`senders`]: SMTP, the SMS gateway and the file sink.

pub mod deliveries;
pub mod plan;
pub mod senders;
pub mod templates;

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::values::Mobile;
use domain::{CodePurpose, Sealed};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::bus::{Bus, Delivery, NotificationRequest, StreamKind};
use crate::db::{ReadError, ReadStore};
use deliveries::{Attempt, DeliveryRow, State};
use plan::{plan_account_event, plan_challenge, plan_request, NotifierEvent};
use senders::{Outbound, SendError, Senders};
use templates::render;

pub use deliveries::{dead_letters, DeadLetter};

/// Opens sealed codes and tokens for delivery. The binary implements it with the keyring; the
/// read side never holds a key of its own.
pub trait Unsealer: Send + Sync + 'static {
    /// The plaintext, or `None` when the key is unknown or the value was altered.
    fn open(&self, sealed: &Sealed) -> Option<String>;
}

/// How the notifier behaves. `Default` is production's.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// `ACCOUNTD_PUBLIC_URL`: the base of reset links (a trailing slash is ignored).
    pub public_url: String,
    /// The durable consumer's name on each stream.
    pub durable: String,
    /// Attempts of one delivery before it becomes a dead letter.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each further one.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed delivery is reserved for the instance that claimed it.
    pub lease: Duration,
    /// Messages handled at once (per stream); messages with the same key (account, challenge)
    /// always go to the same one, in order.
    pub shards: usize,
    /// How long after it was stored an out-of-order event waits for its missing predecessor
    /// before the gap is accepted.
    pub gap_timeout: Duration,
    /// How long after it was stored a subscribed message for an account not seen yet waits
    /// for the account's events before it is dropped.
    pub unknown_account_timeout: Duration,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            durable: "notifier".to_owned(),
            max_attempts: 6,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            shards: 8,
            gap_timeout: Duration::from_secs(30),
            unknown_account_timeout: Duration::from_secs(60),
        }
    }
}

/// What to do with a handled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effect is done.
    Ack,
    /// Not yet: deliver it again after this delay.
    Retry(Duration),
    /// It can never be handled (malformed, or for nobody): acked without effect.
    Drop(&'static str),
}

/// A delivery that did not go: permanent, or worth another attempt.
enum Failure {
    Permanent(String),
    Transient(String),
}

pub struct Notifier {
    db: ReadStore,
    /// The contact folds this instance wrote last, by account: a memo that saves a read per
    /// event (every write still compares-and-sets the stored sequence).
    folds: std::sync::Mutex<std::collections::HashMap<String, plan::Contacts>>,
    bus: Bus,
    unsealer: Arc<dyn Unsealer>,
    senders: Senders,
    settings: NotifierSettings,
}

impl Notifier {
    pub fn new(
        db: ReadStore,
        bus: Bus,
        unsealer: Arc<dyn Unsealer>,
        senders: Senders,
        settings: NotifierSettings,
    ) -> Self {
        Self {
            db,
            folds: Default::default(),
            bus,
            unsealer,
            senders,
            settings,
        }
    }

    pub fn settings(&self) -> &NotifierSettings {
        &self.settings
    }

    /// The streams the notifier consumes.
    pub const STREAMS: [StreamKind; 3] = [
        StreamKind::AccountEvents,
        StreamKind::NotificationRequests,
        StreamKind::ChallengeCodes,
    ];

    /// Runs the consumers until `shutdown` resolves, then lets in-flight messages finish.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let mut consumers = JoinSet::new();
        for kind in Self::STREAMS {
            consumers.spawn(self.clone().consume(kind, stopped.clone()));
        }
        info!("notifier active");
        shutdown.await;
        let _ = stop.send(true);
        while consumers.join_next().await.is_some() {}
    }

    async fn consume(self: Arc<Self>, kind: StreamKind, mut stopped: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        while !*stopped.borrow() {
            let deliveries = match self.bus.consumer(kind, &self.settings.durable).await {
                Ok(consumer) => consumer.deliveries().await,
                Err(e) => Err(e),
            };
            let mut deliveries = match deliveries {
                Ok(d) => d,
                Err(e) => {
                    failures += 1;
                    warn!(stream = kind.base_name(), error = %e, "notifier cannot consume; retrying");
                    let pause = Duration::from_millis(200 * u64::from(failures.min(10)));
                    tokio::select! {
                        _ = stopped.changed() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            };
            let shards = self.settings.shards.max(1);
            let mut queues = Vec::with_capacity(shards);
            let mut workers = JoinSet::new();
            for _ in 0..shards {
                let (tx, mut rx) = mpsc::channel::<Delivery>(64);
                queues.push(tx);
                let notifier = self.clone();
                workers.spawn(async move {
                    while let Some(delivery) = rx.recv().await {
                        notifier.settle(&delivery).await;
                    }
                });
            }
            let mut errors: u32 = 0;
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    next = deliveries.next() => match next {
                        Some(Ok(delivery)) => {
                            errors = 0;
                            failures = 0;
                            let shard = shard_of(&delivery, shards);
                            if queues[shard].send(delivery).await.is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            errors += 1;
                            debug!(stream = kind.base_name(), error = %e, "consumer hiccup");
                            if errors >= 10 {
                                warn!(stream = kind.base_name(), error = %e, "consumer failing; reconnecting");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                break;
                            }
                        }
                        None => break,
                    }
                }
            }
            drop(queues);
            while workers.join_next().await.is_some() {}
        }
    }

    /// Handles `delivery` and acks or naks it.
    pub async fn settle(&self, delivery: &Delivery) -> Outcome {
        let outcome = match self.handle(delivery).await {
            Ok(outcome) => outcome,
            Err(e) => {
                warn!(subject = %delivery.subject, error = %e, "notifier could not handle a message; retrying");
                Outcome::Retry(Duration::from_secs(1))
            }
        };
        let acked = match &outcome {
            Outcome::Ack => delivery.ack().await,
            Outcome::Drop(reason) => {
                metrics::counter!("accountd_notifier_dropped_total", "reason" => *reason)
                    .increment(1);
                warn!(subject = %delivery.subject, reason, "notifier dropped a message");
                delivery.ack().await
            }
            Outcome::Retry(delay) => delivery.nak(*delay).await,
        };
        if let Err(e) = acked {
            // It comes back; the delivery log keeps it from being sent twice.
            warn!(subject = %delivery.subject, error = %e, "could not ack or nak");
        }
        outcome
    }

    /// Plans and delivers what `delivery` asks for; says whether to ack it.
    pub async fn handle(&self, delivery: &Delivery) -> Result<Outcome, ReadError> {
        match delivery.kind {
            StreamKind::AccountEvents => self.handle_account_event(delivery).await,
            StreamKind::NotificationRequests => self.handle_request(delivery).await,
            StreamKind::ChallengeCodes => self.handle_challenge(delivery).await,
            StreamKind::AuditAnchors => Ok(Outcome::Drop("not for the notifier")),
        }
    }

    async fn handle_account_event(&self, delivery: &Delivery) -> Result<Outcome, ReadError> {
        #[derive(Deserialize)]
        struct Envelope {
            account_id: String,
            sequence: u64,
            #[serde(rename = "type")]
            event_type: String,
            payload: Value,
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&delivery.payload) else {
            return Ok(Outcome::Drop("malformed envelope"));
        };
        let Ok(event) = NotifierEvent::parse(&envelope.event_type, envelope.payload) else {
            return Ok(Outcome::Drop("malformed event"));
        };
        let account_id = envelope.account_id.as_str();
        let stored = match self.remembered(account_id) {
            Some(contacts) => Some(contacts),
            None => deliveries::load_contacts(&self.db, account_id).await?,
        };
        let last = stored.as_ref().map_or(0, |c| c.last_sequence);
        let mut contacts = stored.clone().unwrap_or_default();
        let plan = plan_account_event(account_id, envelope.sequence, &event, &mut contacts);
        if envelope.sequence <= last {
            // Planned before: only its deliveries are left to look at.
            return self.deliver(&plan.source_id).await;
        }
        if envelope.sequence != last + 1 {
            if age(delivery) < self.settings.gap_timeout {
                // Its predecessor is on its way (nak'ed, or re-published): wait for it.
                return Ok(Outcome::Retry(Duration::from_millis(100)));
            }
            metrics::counter!("accountd_notifier_gaps_total").increment(1);
            warn!(
                account_id,
                from = last,
                to = envelope.sequence,
                "events never arrived; folding past the gap"
            );
        }
        let expected = stored.map(|c| c.last_sequence);
        let lease = deliveries::now_ms() + millis(self.settings.lease);
        let committed = deliveries::commit_account_plan(
            &self.db, account_id, expected, &contacts, &plan, lease,
        )
        .await;
        match committed {
            Ok(Some(all_new)) => {
                self.remember(account_id, contacts);
                if all_new {
                    self.send_claimed(&plan, lease).await
                } else {
                    self.deliver(&plan.source_id).await
                }
            }
            Ok(None) => {
                // Another instance folded this account meanwhile: look again shortly.
                self.forget(account_id);
                Ok(Outcome::Retry(Duration::from_millis(50)))
            }
            Err(e) => {
                self.forget(account_id);
                Err(e)
            }
        }
    }

    fn remembered(&self, account_id: &str) -> Option<plan::Contacts> {
        let folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        folds.get(account_id).cloned()
    }

    fn remember(&self, account_id: &str, contacts: plan::Contacts) {
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        if folds.len() >= 100_000 {
            folds.clear(); // bounded; a miss costs one read
        }
        folds.insert(account_id.to_owned(), contacts);
    }

    fn forget(&self, account_id: &str) {
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        folds.remove(account_id);
    }

    async fn handle_request(&self, delivery: &Delivery) -> Result<Outcome, ReadError> {
        let Some(account_id) = delivery.subject.rsplit('.').next() else {
            return Ok(Outcome::Drop("malformed subject"));
        };
        let Ok(request) = serde_json::from_slice::<NotificationRequest>(&delivery.payload) else {
            return Ok(Outcome::Drop("malformed request"));
        };
        if request.validate().is_err() {
            return Ok(Outcome::Drop("invalid request"));
        }
        let source_id = match &delivery.message_id {
            Some(id) if id.starts_with("request:") => id.clone(),
            Some(id) => format!("request:{id}"),
            None => format!(
                "request:{}@{}",
                delivery.stream_sequence,
                delivery.published.timestamp_nanos_opt().unwrap_or_default()
            ),
        };
        if !deliveries::is_planned(&self.db, &source_id).await? {
            let Some(contacts) = deliveries::load_contacts(&self.db, account_id).await? else {
                if age(delivery) < self.settings.unknown_account_timeout {
                    // Its account's events may not have reached the notifier yet.
                    return Ok(Outcome::Retry(Duration::from_secs(1)));
                }
                return Ok(Outcome::Drop("unknown account"));
            };
            let after = delivery
                .message_id
                .as_deref()
                .and_then(|id| id.rsplit_once(":after:"))
                .and_then(|(_, sequence)| sequence.parse::<u64>().ok());
            if after.is_some_and(|after| contacts.last_sequence < after)
                && age(delivery) < self.settings.unknown_account_timeout
            {
                // The account's events up to the request have not all reached the notifier.
                return Ok(Outcome::Retry(Duration::from_millis(200)));
            }
            let plan = plan_request(source_id.clone(), &request, &contacts);
            if plan.messages.is_empty() {
                return Ok(Outcome::Drop("no verified contact value"));
            }
            let lease = deliveries::now_ms() + millis(self.settings.lease);
            if deliveries::record_plan(&self.db, &plan, lease).await? {
                return self.send_claimed(&plan, lease).await;
            }
        }
        self.deliver(&source_id).await
    }

    async fn handle_challenge(&self, delivery: &Delivery) -> Result<Outcome, ReadError> {
        #[derive(Deserialize)]
        struct Envelope {
            challenge_id: String,
            payload: Issued,
        }
        #[derive(Deserialize)]
        struct Issued {
            mobile: Mobile,
            purpose: CodePurpose,
            sealed_code: Sealed,
            expires_at: DateTime<Utc>,
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&delivery.payload) else {
            return Ok(Outcome::Drop("malformed challenge"));
        };
        let issued = envelope.payload;
        let plan = plan_challenge(
            &envelope.challenge_id,
            &issued.mobile,
            issued.purpose,
            &issued.sealed_code,
            issued.expires_at,
        );
        let lease = deliveries::now_ms() + millis(self.settings.lease);
        if deliveries::record_plan(&self.db, &plan, lease).await? {
            return self.send_claimed(&plan, lease).await;
        }
        self.deliver(&plan.source_id).await
    }

    /// Tries every row of `source_id` that is due; says whether anything is left to try.
    async fn deliver(&self, source_id: &str) -> Result<Outcome, ReadError> {
        let rows = deliveries::rows_of(&self.db, source_id).await?;
        let mut next: Option<i64> = None;
        let mut wait_until = |at: i64| next = Some(next.map_or(at, |n: i64| n.min(at)));
        for row in rows {
            let now = deliveries::now_ms();
            match row.state {
                State::Sent | State::Dead => continue,
                State::Pending if row.next_attempt_ms > now => {
                    wait_until(row.next_attempt_ms);
                    continue;
                }
                State::Sending if row.lease_until_ms.is_some_and(|l| l >= now) => {
                    wait_until(row.lease_until_ms.unwrap_or(now));
                    continue;
                }
                _ => {}
            }
            let lease = now + millis(self.settings.lease);
            if !deliveries::claim(&self.db, &row, now, lease).await? {
                wait_until(now + 200);
                continue;
            }
            if let Some(at) = self.attempt_claimed(&row).await? {
                wait_until(at);
            }
        }
        Ok(match next {
            None => Outcome::Ack,
            Some(at) => Outcome::Retry(Duration::from_millis(
                u64::try_from(at - deliveries::now_ms())
                    .unwrap_or(0)
                    .max(10),
            )),
        })
    }

    /// Sends the rows of `plan`, which its caller has just recorded claimed (no read needed).
    async fn send_claimed(
        &self,
        plan: &plan::Plan,
        lease_until_ms: i64,
    ) -> Result<Outcome, ReadError> {
        let mut next: Option<i64> = None;
        for planned in &plan.messages {
            let row = DeliveryRow {
                source_id: plan.source_id.clone(),
                channel: planned.channel,
                recipient: planned.recipient.clone(),
                template: Some(planned.template),
                params: planned.params.clone(),
                state: State::Sending,
                attempts: 0,
                next_attempt_ms: 0,
                lease_until_ms: Some(lease_until_ms),
            };
            if let Some(at) = self.attempt_claimed(&row).await? {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(match next {
            None => Outcome::Ack,
            Some(at) => Outcome::Retry(Duration::from_millis(
                u64::try_from(at - deliveries::now_ms())
                    .unwrap_or(0)
                    .max(10),
            )),
        })
    }

    /// One attempt of a row claimed by this instance (`row.attempts` as before the claim);
    /// records the result. Returns when to try again, if it is to be tried again.
    async fn attempt_claimed(&self, row: &DeliveryRow) -> Result<Option<i64>, ReadError> {
        let source_id = row.source_id.as_str();
        let attempts = row.attempts + 1;
        let template = row.template.map_or("unknown", |t| t.as_str());
        let channel = row.channel.as_str();
        match self.attempt(row).await {
            Ok(()) => {
                deliveries::finish(&self.db, row, Attempt::Sent).await?;
                metrics::counter!("accountd_notifications_sent_total",
                    "channel" => channel, "template" => template)
                .increment(1);
                debug!(source_id, channel, template, "sent");
                Ok(None)
            }
            Err(Failure::Transient(error)) if attempts < self.settings.max_attempts => {
                let at = deliveries::now_ms() + millis(self.backoff(attempts));
                deliveries::finish(
                    &self.db,
                    row,
                    Attempt::Retry {
                        at_ms: at,
                        error: &error,
                    },
                )
                .await?;
                metrics::counter!("accountd_notifications_failed_total", "channel" => channel)
                    .increment(1);
                warn!(
                    source_id,
                    channel, template, attempts, error, "send failed; will retry"
                );
                Ok(Some(at))
            }
            Err(Failure::Transient(error) | Failure::Permanent(error)) => {
                deliveries::finish(&self.db, row, Attempt::Dead { error: &error }).await?;
                metrics::counter!("accountd_notifications_dead_letter_total",
                    "channel" => channel, "template" => template)
                .increment(1);
                warn!(
                    source_id,
                    channel, template, attempts, error, "message dead-lettered"
                );
                Ok(None)
            }
        }
    }

    /// Renders and sends one row.
    async fn attempt(&self, row: &DeliveryRow) -> Result<(), Failure> {
        let template = row
            .template
            .ok_or_else(|| Failure::Permanent("unknown template".into()))?;
        let rendered = render(
            template,
            row.channel,
            &row.params,
            self.unsealer.as_ref(),
            &self.settings.public_url,
        )
        .map_err(|e| Failure::Permanent(e.to_string()))?;
        let message = Outbound {
            channel: row.channel,
            to: row.recipient.clone(),
            subject: rendered.subject,
            text: rendered.text,
        };
        self.senders.send(&message).await.map_err(|e| match e {
            SendError::Transient(e) => Failure::Transient(e),
            SendError::Permanent(e) => Failure::Permanent(e),
        })
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        (self.settings.backoff * factor).min(self.settings.max_backoff)
    }
}

/// How long ago the stream stored `delivery`.
fn age(delivery: &Delivery) -> Duration {
    (Utc::now() - delivery.published)
        .to_std()
        .unwrap_or_default()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The shard of a delivery: by account (or challenge), so one key's messages stay in order.
fn shard_of(delivery: &Delivery, shards: usize) -> usize {
    let key = match delivery.kind {
        // `…accounts.<id>.<Type>`: the id is the second token from the end.
        StreamKind::AccountEvents => delivery.subject.rsplit('.').nth(1),
        _ => delivery.subject.rsplit('.').next(),
    }
    .unwrap_or_default();
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}
