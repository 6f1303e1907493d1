//! The notifier (SPEC §2 Notifications, §5; issue 11): what to send is planned in commit order,
//! sending is done by stateless workers.
//!
//! - [`planner::Planner`] reads the gap-free event log after its own checkpoint and, in one
//!   transaction per batch, folds contact values and writes the delivery rows (one per message,
//!   `pending`). Subscribed messages received over the bus wait in the store until the planner
//!   has folded their account far enough, then are planned the same way, or become dead
//!   letters when they never can be.
//! - [`Notifier`] is a worker: it keeps subscribed messages from `NOTIFICATION_REQUESTS` (acked
//!   once stored), and claims due rows under a short lease, renewed by a heartbeat while it
//!   sends. Any number of workers, in any number of processes, share the rows and need no
//!   order; when one dies its rows are due again as soon as its lease runs out (seconds).
//! - Each message carries its delivery id (derived from its key): the SMS gateway gets it as
//!   `Idempotency-Key`, an email as its `Message-ID`, so a re-send after a crash between the
//!   send and its `sent` mark is recognisable downstream.
//! - A row that cannot be sent (permanent failure, the last attempt) is a dead letter with its
//!   reason, counted in `/metrics` and listed by `accountd notify dead-letters`.
//!
//! # Layout
//! - [`plan`]: what each event or request sends, to whom (pure).
//! - [`planner`]: the catch-up planner.
//! - [`templates`]: the texts, rendered at send time.
//! - [`store`]: the contact fold, the waiting requests and the delivery log.
//! - [`senders`]: SMTP, the SMS gateway and the file sink.

pub mod plan;
pub mod planner;
pub mod senders;
pub mod store;
pub mod templates;

use crate::batches::{run_batches, Pacing};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::{Channel, Sealed};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{watch, Mutex, Notify};
use tracing::{debug, info, warn};

use crate::bus::{Bus, BusError, Delivery, NotificationRequest, StreamKind};
use crate::db::ReadError;
use plan::Template;
use senders::{Outbound, SendError, Senders};
use store::{now_ms, Attempt, DeadPlan, DeliveryRow, NotifyStore, PendingRequest};
use templates::render;

pub use planner::Planner;
pub use store::DeadLetter;

/// Opens sealed codes and tokens for delivery. The binary implements it with the keyring; the
/// read side never holds a key of its own.
pub trait Unsealer: Send + Sync + 'static {
    /// The plaintext, or `None` when the key is unknown or the value was altered.
    fn open(&self, sealed: &Sealed) -> Option<String>;
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("event log: {0}")]
    Log(#[source] domain::PortError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("another planner moved the checkpoint")]
    CheckpointMoved,
}

/// How the workers behave. `Default` is production's.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// `ACCOUNTD_PUBLIC_URL`: the base of reset and protection links (a trailing slash is ignored).
    pub public_url: String,
    /// The durable consumer's name on `NOTIFICATION_REQUESTS`.
    pub durable: String,
    /// Attempts of one delivery before it becomes a dead letter.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each further one.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed row is reserved for its worker without a heartbeat: how long a
    /// worker's death delays its messages. The heartbeat renews it every third of it.
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: u32,
    /// Sends in flight at once per worker.
    pub concurrency: usize,
    /// How often an idle worker looks for rows planned by other processes.
    pub poll: Duration,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            durable: "notifier".to_owned(),
            max_attempts: 6,
            backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(300),
            lease: Duration::from_secs(5),
            batch: 256,
            concurrency: 32,
            poll: Duration::from_millis(100),
        }
    }
}

/// A delivery that did not go: permanent, or worth another attempt.
enum Failure {
    Permanent(String),
    Transient(String),
}

/// A worker: keeps subscribed messages for the planner and sends due rows.
pub struct Notifier {
    store: Arc<dyn NotifyStore>,
    bus: Bus,
    unsealer: Arc<dyn Unsealer>,
    senders: Senders,
    settings: NotifierSettings,
    /// Woken by the planner of this process when it planned rows.
    planned: Arc<Notify>,
}

impl Notifier {
    pub fn new(
        store: Arc<dyn NotifyStore>,
        bus: Bus,
        unsealer: Arc<dyn Unsealer>,
        senders: Senders,
        settings: NotifierSettings,
        planned: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            bus,
            unsealer,
            senders,
            settings,
            planned,
        }
    }

    pub fn settings(&self) -> &NotifierSettings {
        &self.settings
    }

    /// Runs the request consumer and the sender until `shutdown` resolves, then lets the
    /// batch in flight finish.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let requests = tokio::spawn(self.clone().consume_requests(stopped.clone()));
        let sender = tokio::spawn(self.clone().send_due(stopped.clone()));
        let gauges = tokio::spawn(self.clone().report(stopped));
        info!("notifier worker active");
        shutdown.await;
        let _ = stop.send(true);
        for task in [requests, sender, gauges] {
            let _ = task.await;
        }
    }

    /// Keeps every subscribed message of `NOTIFICATION_REQUESTS` for the planner; acks it once
    /// stored.
    async fn consume_requests(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let kind = StreamKind::NotificationRequests;
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
                    warn!(error = %e, "notifier cannot consume requests; retrying");
                    let pause = Duration::from_millis(200 * u64::from(failures.min(10)));
                    tokio::select! {
                        _ = stopped.changed() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                    continue;
                }
            };
            let mut errors: u32 = 0;
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    next = deliveries.next() => match next {
                        Some(Ok(delivery)) => {
                            errors = 0;
                            failures = 0;
                            self.settle_request(&delivery).await;
                        }
                        Some(Err(e)) => {
                            errors += 1;
                            debug!(error = %e, "consumer hiccup");
                            if errors >= 10 {
                                warn!(error = %e, "request consumer failing; reconnecting");
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                break;
                            }
                        }
                        None => break,
                    }
                }
            }
        }
    }

    /// Stores one request (or its dead letter) and acks it; naks it when the store fails.
    pub async fn settle_request(&self, delivery: &Delivery) {
        let stored = match request_of(delivery) {
            Ok(request) => self.store.record_request(&request).await,
            Err(dead) => {
                warn!(subject = %delivery.subject, reason = %dead.reason, "a request that can never be sent");
                metrics::counter!("accountd_notifications_dead_letter_total", "channel" => "none")
                    .increment(1);
                self.store.record_dead(&dead, now_ms()).await
            }
        };
        let settled = match stored {
            Ok(()) => delivery.ack().await,
            Err(e) => {
                warn!(subject = %delivery.subject, error = %e, "could not keep a request; retrying");
                delivery.nak(Duration::from_secs(1)).await
            }
        };
        if let Err(e) = settled {
            // It comes back; keeping it again changes nothing.
            warn!(subject = %delivery.subject, error = %e, "could not ack or nak");
        }
    }

    /// Claims due rows and sends them, until `stopped`.
    async fn send_due(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let pacing = Pacing {
            poll: self.settings.poll,
            full: self.settings.batch.max(1) as usize,
        };
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        run_batches("notifier", &self.planned, pacing, shutdown, || {
            self.send_batch()
        })
        .await;
    }

    /// Claims one batch of due rows and sends it; returns how many rows it claimed.
    pub async fn send_batch(&self) -> Result<usize, ReadError> {
        let lease = millis(self.settings.lease);
        let now = now_ms();
        let rows = self
            .store
            .claim_due(now, now + lease, i64::from(self.settings.batch.max(1)))
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let claimed = rows.len();
        // Rows not finished yet, renewed by the heartbeat until their outcome is stored.
        let open = Arc::new(Mutex::new(rows.clone()));
        let heartbeat = {
            let open = open.clone();
            let store = self.store.clone();
            let every = self.settings.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let rows = open.lock().await.clone();
                    if let Err(e) = store.extend_leases(&rows, now_ms() + lease).await {
                        warn!(error = %e, "could not renew the leases of claimed deliveries");
                    }
                }
            })
        };
        let mut outcomes = futures::stream::iter(rows)
            .map(|row| async move {
                let attempt = self.attempt_row(&row).await;
                (row, attempt)
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .ready_chunks(256);
        while let Some(chunk) = outcomes.next().await {
            self.record(&chunk).await;
            let mut open = open.lock().await;
            open.retain(|r| !chunk.iter().any(|(done, _)| done == r));
        }
        heartbeat.abort();
        Ok(claimed)
    }

    /// Stores the outcomes of `chunk`, retrying for a while: a row whose outcome is lost is
    /// sent again when its lease runs out (a duplicate with the same delivery id).
    async fn record(&self, chunk: &[(DeliveryRow, Attempt)]) {
        let mut tries = 0u32;
        loop {
            match self.store.finish(chunk).await {
                Ok(()) => return,
                Err(e) if tries < 40 => {
                    tries += 1;
                    debug!(error = %e, tries, "could not record outcomes; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    warn!(error = %e, rows = chunk.len(), "outcomes lost: these rows are sent again");
                    return;
                }
            }
        }
    }

    /// One attempt of a claimed row, and what it means for the row.
    async fn attempt_row(&self, row: &DeliveryRow) -> Attempt {
        let source_id = row.source_id.as_str();
        let template = row.template.as_str();
        let channel = row.channel.as_str();
        match self.attempt(row).await {
            Ok(()) => {
                metrics::counter!("accountd_notifications_sent_total",
                    "channel" => channel.to_owned(), "template" => template.to_owned())
                .increment(1);
                debug!(source_id, channel, template, "sent");
                Attempt::Sent
            }
            Err(Failure::Transient(error)) if row.attempts < self.settings.max_attempts => {
                let at_ms = now_ms() + millis(self.backoff(row.attempts));
                metrics::counter!("accountd_notifications_failed_total", "channel" => channel.to_owned())
                    .increment(1);
                warn!(
                    source_id,
                    channel,
                    template,
                    attempts = row.attempts,
                    error,
                    "send failed; will retry"
                );
                Attempt::Retry { at_ms, error }
            }
            Err(Failure::Transient(error) | Failure::Permanent(error)) => {
                metrics::counter!("accountd_notifications_dead_letter_total",
                    "channel" => channel.to_owned(), "template" => template.to_owned())
                .increment(1);
                warn!(
                    source_id,
                    channel,
                    template,
                    attempts = row.attempts,
                    error,
                    "message dead-lettered"
                );
                Attempt::Dead { error }
            }
        }
    }

    /// Renders and sends one row.
    async fn attempt(&self, row: &DeliveryRow) -> Result<(), Failure> {
        let template = Template::parse(&row.template)
            .ok_or_else(|| Failure::Permanent("unknown template".into()))?;
        let channel = match row.channel.as_str() {
            "sms" => Channel::Sms,
            "email" => Channel::Email,
            _ => return Err(Failure::Permanent("unknown channel".into())),
        };
        let rendered = render(
            template,
            channel,
            &row.params,
            self.unsealer.as_ref(),
            &self.settings.public_url,
        )
        .map_err(|e| Failure::Permanent(e.to_string()))?;
        let message = Outbound {
            delivery_id: row.delivery_id(),
            channel,
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

    /// Publishes the delivery log's counts by state (dead letters included) as gauges: they
    /// hold across restarts, unlike the counters of one process.
    async fn report(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            if let Ok(counts) = self.store.counts().await {
                for state in ["pending", "sending", "sent", "dead"] {
                    let n = counts
                        .iter()
                        .find(|(s, _)| s == state)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("accountd_notifications_deliveries", "state" => state)
                        .set(n as f64);
                }
            }
            tokio::select! {
                _ = stopped.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// The request a delivery of `NOTIFICATION_REQUESTS` carries, or why it can never be sent.
fn request_of(delivery: &Delivery) -> Result<PendingRequest, DeadPlan> {
    let source_id = match &delivery.message_id {
        Some(id) if id.starts_with("request:") => id.clone(),
        Some(id) => format!("request:{id}"),
        None => format!(
            "request:{}@{}",
            delivery.stream_sequence,
            delivery.published.timestamp_nanos_opt().unwrap_or_default()
        ),
    };
    let dead = |reason: &str| DeadPlan {
        source_id: source_id.clone(),
        template: Template::Subscribed.as_str().to_owned(),
        reason: reason.to_owned(),
    };
    let account_id = delivery
        .subject
        .rsplit('.')
        .next()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| dead("malformed subject"))?;
    let request = serde_json::from_slice::<NotificationRequest>(&delivery.payload)
        .map_err(|_| dead("malformed request"))?;
    if request.validate().is_err() {
        return Err(dead("invalid request"));
    }
    let after_sequence = delivery
        .message_id
        .as_deref()
        .and_then(|id| id.rsplit_once(":after:"))
        .and_then(|(_, sequence)| sequence.parse::<u64>().ok());
    Ok(PendingRequest {
        source_id: source_id.clone(),
        account_id: account_id.to_owned(),
        after_sequence,
        params: serde_json::to_value(&request).unwrap_or(Value::Null),
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
