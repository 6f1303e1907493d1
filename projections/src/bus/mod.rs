//! The bus (SPEC §5): NATS JetStream in a deployment, an in-process bus in the embedded default,
//! behind one interface so that the relay and the notifier run the same code over both.
//!
//! Streams, each name and subject prefixed verbatim with `ACCOUNTD_NATS_STREAM_PREFIX`:
//!
//! | stream | subjects | holds |
//! |---|---|---|
//! | `ACCOUNT_EVENTS` | `accounts.<account_id>.<EventType>` | one message per account event, nothing else |
//! | `NOTIFICATION_REQUESTS` | `notifications.requests.<account_id>` | `{kind, subject, body}` from other services |
//! | `AUDIT_ANCHORS` | `audit.anchors` | the periodic anchors of every account stream's head |
//! | `CHALLENGE_CODES` | `challenges.codes.<challenge_id>` | sealed sign-up / sign-in SMS codes (ADR 0004) |
//!
//! # Layout
//! - this file: configuration, names and subjects, the [`Bus`] facade, messages and deliveries.
//! - [`nats`]: JetStream (async-nats): streams created or updated at start, pipelined publishes,
//!   durable pull consumers.
//! - [`memory`]: the in-process bus: the same streams and consumer semantics (ack, nak with
//!   delay, redelivery, de-duplication by message id) held in memory.

pub mod memory;
pub mod nats;

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

/// How to reach the bus (SPEC §7: `NATS_URL`, `ACCOUNTD_NATS_STREAM_PREFIX`,
/// `ACCOUNTD_NATS_REPLICAS`).
#[derive(Debug, Clone, Default)]
pub struct BusConfig {
    /// `nats://host:port`; `None` is the in-process bus.
    pub url: Option<String>,
    /// Prepended verbatim to every stream name and subject.
    pub prefix: String,
    /// Replicas of each stream (JetStream clustering); at least 1.
    pub replicas: usize,
}

/// A bus failure: unreachable, refused, or a malformed configuration.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the stream prefix {0:?} may not contain '.', '*', '>', '/' or whitespace")]
    InvalidPrefix(String),
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("cannot create or update stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("consumer failed: {0}")]
    Consumer(String),
    #[error("acknowledgement failed: {0}")]
    Ack(String),
    #[error("the bus is not reachable: {0}")]
    Unreachable(String),
}

/// The streams accountd owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKind {
    AccountEvents,
    NotificationRequests,
    AuditAnchors,
    ChallengeCodes,
}

impl StreamKind {
    pub const ALL: [StreamKind; 4] = [
        Self::AccountEvents,
        Self::NotificationRequests,
        Self::AuditAnchors,
        Self::ChallengeCodes,
    ];

    /// The stream's name without the prefix.
    pub fn base_name(self) -> &'static str {
        match self {
            Self::AccountEvents => "ACCOUNT_EVENTS",
            Self::NotificationRequests => "NOTIFICATION_REQUESTS",
            Self::AuditAnchors => "AUDIT_ANCHORS",
            Self::ChallengeCodes => "CHALLENGE_CODES",
        }
    }

    /// The stream's subject filter without the prefix.
    pub fn base_subjects(self) -> &'static str {
        match self {
            Self::AccountEvents => "accounts.*.*",
            Self::NotificationRequests => "notifications.requests.*",
            Self::AuditAnchors => "audit.anchors",
            Self::ChallengeCodes => "challenges.codes.*",
        }
    }

    /// How long the stream keeps a message (`None`: for ever). Requests and codes are only
    /// worth delivering for a while; events and anchors are a record.
    pub fn max_age(self) -> Option<Duration> {
        match self {
            Self::AccountEvents | Self::AuditAnchors => None,
            Self::NotificationRequests => Some(Duration::from_secs(7 * 24 * 3600)),
            Self::ChallengeCodes => Some(Duration::from_secs(24 * 3600)),
        }
    }
}

/// Stream names and subjects under one prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: &str) -> Result<Self, BusError> {
        let bad = |c: char| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace();
        if prefix.chars().any(bad) {
            return Err(BusError::InvalidPrefix(prefix.to_owned()));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn stream_name(&self, kind: StreamKind) -> String {
        format!("{}{}", self.prefix, kind.base_name())
    }

    pub fn subjects(&self, kind: StreamKind) -> String {
        format!("{}{}", self.prefix, kind.base_subjects())
    }

    /// `accounts.<account_id>.<EventType>`.
    pub fn account_event_subject(&self, account_id: &str, event_type: &str) -> String {
        format!(
            "{}accounts.{}.{}",
            self.prefix,
            token(account_id),
            token(event_type)
        )
    }

    /// `notifications.requests.<account_id>`.
    pub fn notification_request_subject(&self, account_id: &str) -> String {
        format!(
            "{}notifications.requests.{}",
            self.prefix,
            token(account_id)
        )
    }

    /// `audit.anchors`.
    pub fn anchor_subject(&self) -> String {
        format!("{}audit.anchors", self.prefix)
    }

    /// `challenges.codes.<challenge_id>`.
    pub fn challenge_code_subject(&self, challenge_id: &str) -> String {
        format!("{}challenges.codes.{}", self.prefix, token(challenge_id))
    }

    /// Which stream a subject belongs to, and its subject without the prefix.
    pub fn classify<'s>(&self, subject: &'s str) -> Option<(StreamKind, &'s str)> {
        let rest = subject.strip_prefix(self.prefix.as_str())?;
        let kind = if rest.starts_with("accounts.") {
            StreamKind::AccountEvents
        } else if rest.starts_with("notifications.requests.") {
            StreamKind::NotificationRequests
        } else if rest == "audit.anchors" {
            StreamKind::AuditAnchors
        } else if rest.starts_with("challenges.codes.") {
            StreamKind::ChallengeCodes
        } else {
            return None;
        };
        Some((kind, rest))
    }
}

/// One subject token: ids are digits or UUIDs, but a token may never split or widen a subject.
fn token(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if matches!(c, '.' | '*' | '>') || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A message to publish.
#[derive(Clone)]
pub struct OutgoingMessage {
    pub subject: String,
    /// The `Nats-Msg-Id` header: the server drops a second message with the same id within its
    /// duplicate window.
    pub message_id: Option<String>,
    pub payload: Vec<u8>,
}

impl fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads hold personal data (and sealed secrets): never in a log line.
        f.debug_struct("OutgoingMessage")
            .field("subject", &self.subject)
            .field("message_id", &self.message_id)
            .field("bytes", &self.payload.len())
            .finish()
    }
}

/// What the bus answered to a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub stream_sequence: u64,
    /// The message id was seen within the duplicate window: nothing new was stored.
    pub duplicate: bool,
}

/// A subscribed message from another service (SPEC §2, `POST /internal/v1/accounts/{id}/notifications`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    pub kind: NotificationKind,
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Arrears,
    Expiry,
    Event,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Arrears => "arrears",
            Self::Expiry => "expiry",
            Self::Event => "event",
        }
    }
}

/// Why a subscribed message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidNotification {
    #[error("subject must be 1 to {MAX_SUBJECT} characters on one line")]
    Subject,
    #[error("body must be 1 to {MAX_BODY} characters")]
    Body,
    /// SPEC §2: no message other than a code message contains a run of exactly six digits.
    #[error("subject and body may not contain a run of exactly six digits (it would read as a verification code)")]
    LooksLikeACode,
}

const MAX_SUBJECT: usize = 200;
const MAX_BODY: usize = 4000;

impl NotificationRequest {
    /// Checks what a caller sent; the gateway answers 400 `invalid_request` with the message.
    pub fn validate(&self) -> Result<(), InvalidNotification> {
        let subject = self.subject.trim();
        if subject.is_empty()
            || subject.chars().count() > MAX_SUBJECT
            || subject.contains(['\r', '\n'])
        {
            return Err(InvalidNotification::Subject);
        }
        let body = self.body.trim();
        if body.is_empty() || body.chars().count() > MAX_BODY {
            return Err(InvalidNotification::Body);
        }
        if has_six_digit_run(subject) || has_six_digit_run(body) {
            return Err(InvalidNotification::LooksLikeACode);
        }
        Ok(())
    }
}

/// Whether `text` holds a run of exactly six digits (what a verification code looks like).
///
/// Any script's digits count (fullwidth `１２３`, Arabic-Indic `١٢٣`…: a reader sees a code),
/// and characters that show as nothing or as a plain gap without breaking the number for a
/// reader (zero-width characters, no-break spaces, the soft hyphen) do not end a run.
pub fn has_six_digit_run(text: &str) -> bool {
    let joins_digits = |c: char| {
        matches!(
            c,
            '\u{00A0}' // no-break space
                | '\u{00AD}' // soft hyphen
                | '\u{2007}' // figure space
                | '\u{200B}'
                ..='\u{200D}' // zero-width space and (non-)joiner
                | '\u{2060}' // word joiner
                | '\u{202F}' // narrow no-break space
                | '\u{FEFF}' // zero-width no-break space
        )
    };
    let mut run = 0usize;
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_numeric() {
            run += 1;
        } else if !joins_digits(c) {
            if run == 6 {
                return true;
            }
            run = 0;
        }
    }
    false
}

/// A message handed to a consumer, to be acked once its effect is done (or nak'ed to come back).
pub struct Delivery {
    pub kind: StreamKind,
    pub subject: String,
    pub message_id: Option<String>,
    pub payload: Vec<u8>,
    /// The message's place in its stream (stable across redeliveries).
    pub stream_sequence: u64,
    /// 1 on the first delivery, then one more per redelivery.
    pub delivered: u64,
    /// When the stream stored it.
    pub published: DateTime<Utc>,
    acker: Acker,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .field("message_id", &self.message_id)
            .field("stream_sequence", &self.stream_sequence)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

enum Acker {
    Nats(Box<async_nats::jetstream::message::Acker>),
    Memory(memory::Acker),
}

impl Delivery {
    /// The effect is done: never deliver it again.
    pub async fn ack(&self) -> Result<(), BusError> {
        match &self.acker {
            Acker::Nats(acker) => acker.ack().await.map_err(|e| BusError::Ack(e.to_string())),
            Acker::Memory(acker) => {
                acker.ack();
                Ok(())
            }
        }
    }

    /// Not now: deliver it again after `delay`.
    pub async fn nak(&self, delay: Duration) -> Result<(), BusError> {
        match &self.acker {
            Acker::Nats(acker) => acker
                .ack_with(async_nats::jetstream::AckKind::Nak(Some(delay)))
                .await
                .map_err(|e| BusError::Ack(e.to_string())),
            Acker::Memory(acker) => {
                acker.nak(delay);
                Ok(())
            }
        }
    }
}

/// The deliveries of a consumer, as they come.
pub type Deliveries = Pin<Box<dyn Stream<Item = Result<Delivery, BusError>> + Send>>;

/// A durable consumer of one stream.
pub enum Consumer {
    Nats(Box<nats::NatsConsumer>),
    Memory(memory::MemoryConsumer),
}

impl Consumer {
    /// Its deliveries, starting with whatever it has not acked.
    pub async fn deliveries(&self) -> Result<Deliveries, BusError> {
        match self {
            Self::Nats(c) => c.deliveries().await,
            Self::Memory(c) => Ok(c.deliveries()),
        }
    }
}

/// The bus. Cloning is cheap (connections and in-process streams are shared).
#[derive(Clone)]
pub struct Bus {
    inner: Inner,
    topology: Topology,
}

#[derive(Clone)]
enum Inner {
    Nats(std::sync::Arc<nats::NatsBus>),
    Memory(memory::MemoryBus),
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field(
                "kind",
                &match self.inner {
                    Inner::Nats(_) => "nats",
                    Inner::Memory(_) => "in-process",
                },
            )
            .field("prefix", &self.topology.prefix)
            .finish()
    }
}

impl Bus {
    /// Connects to NATS and creates or updates the streams, or (no URL) makes the in-process bus.
    pub async fn connect(config: BusConfig) -> Result<Bus, BusError> {
        let topology = Topology::new(&config.prefix)?;
        let inner = match &config.url {
            Some(url) => Inner::Nats(std::sync::Arc::new(
                nats::NatsBus::connect(url, &topology, config.replicas.max(1)).await?,
            )),
            None => Inner::Memory(memory::MemoryBus::new()),
        };
        Ok(Bus { inner, topology })
    }

    /// The in-process bus.
    pub fn in_process(prefix: &str) -> Result<Bus, BusError> {
        Ok(Bus {
            inner: Inner::Memory(memory::MemoryBus::new()),
            topology: Topology::new(prefix)?,
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Whether messages survive this process (JetStream) or not (in-process).
    pub fn is_durable(&self) -> bool {
        matches!(self.inner, Inner::Nats(_))
    }

    /// Whether the bus answers (readiness).
    pub async fn ping(&self) -> Result<(), BusError> {
        match &self.inner {
            Inner::Nats(bus) => bus.ping(&self.topology).await,
            Inner::Memory(_) => Ok(()),
        }
    }

    /// Publishes one message and waits for the stream to store it.
    pub async fn publish(&self, message: OutgoingMessage) -> Result<Published, BusError> {
        self.publish_all(vec![message])
            .await
            .pop()
            .unwrap_or_else(|| Err(BusError::Publish("nothing published".into())))
    }

    /// Sends every message, then waits for every acknowledgement (pipelined). The results are in
    /// the order of `messages`. Messages are sent in order on one connection, but a failed one
    /// may be followed by stored ones: callers that need an order among messages send them in
    /// separate calls.
    pub async fn publish_all(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Vec<Result<Published, BusError>> {
        match &self.inner {
            Inner::Nats(bus) => bus.publish_all(messages).await,
            Inner::Memory(bus) => messages
                .into_iter()
                .map(|m| bus.publish(&self.topology, m))
                .collect(),
        }
    }

    /// Publishes a subscribed message for `account_id` on `notifications.requests.<account_id>`
    /// (what `POST /internal/v1/accounts/{id}/notifications` does). Refuses an invalid one.
    pub async fn publish_notification_request(
        &self,
        account_id: &str,
        request: &NotificationRequest,
    ) -> Result<Published, BusError> {
        self.publish_notification_request_after(account_id, request, None)
            .await
    }

    /// Publishes a subscribed message that must go to the contact values as they are once the
    /// account's events up to `after_sequence` are folded (read-your-writes: a contact value
    /// verified just before the request counts). The sequence travels in the message id.
    pub async fn publish_notification_request_after(
        &self,
        account_id: &str,
        request: &NotificationRequest,
        after_sequence: Option<u64>,
    ) -> Result<Published, BusError> {
        request
            .validate()
            .map_err(|e| BusError::Publish(e.to_string()))?;
        let payload = serde_json::to_vec(request).map_err(|e| BusError::Publish(e.to_string()))?;
        self.publish(OutgoingMessage {
            subject: self.topology.notification_request_subject(account_id),
            message_id: Some(match after_sequence {
                Some(sequence) => format!("request:{}:after:{sequence}", uuid::Uuid::now_v7()),
                None => format!("request:{}", uuid::Uuid::now_v7()),
            }),
            payload,
        })
        .await
    }

    /// Publishes an audit anchor on `audit.anchors`.
    pub async fn publish_anchor(&self, payload: &serde_json::Value) -> Result<Published, BusError> {
        let bytes = serde_json::to_vec(payload).map_err(|e| BusError::Publish(e.to_string()))?;
        self.publish(OutgoingMessage {
            subject: self.topology.anchor_subject(),
            message_id: None,
            payload: bytes,
        })
        .await
    }

    /// The durable consumer `durable` of stream `kind`, created if needed: explicit acks, every
    /// message from the start of the stream, redelivered without limit until acked.
    pub async fn consumer(&self, kind: StreamKind, durable: &str) -> Result<Consumer, BusError> {
        match &self.inner {
            Inner::Nats(bus) => Ok(Consumer::Nats(Box::new(
                bus.consumer(&self.topology, kind, durable).await?,
            ))),
            Inner::Memory(bus) => Ok(Consumer::Memory(bus.consumer(kind, durable))),
        }
    }

    /// Deletes this prefix's streams and everything in them (tests and benchmarks clean up
    /// after themselves on a shared server). The in-process bus has nothing to delete.
    pub async fn delete_streams(&self) -> Result<(), BusError> {
        match &self.inner {
            Inner::Nats(bus) => bus.delete_streams(&self.topology).await,
            Inner::Memory(_) => Ok(()),
        }
    }

    /// How many messages consumer `durable` of stream `kind` has not acked yet (not delivered,
    /// or delivered and awaiting an ack): its lag.
    pub async fn consumer_lag(&self, kind: StreamKind, durable: &str) -> Result<u64, BusError> {
        match &self.inner {
            Inner::Nats(bus) => bus.consumer_lag(&self.topology, kind, durable).await,
            Inner::Memory(bus) => Ok(bus.consumer_lag(kind, durable)),
        }
    }

    /// Removes a durable consumer (tests and operations: it starts again from the stream's start).
    pub async fn delete_consumer(&self, kind: StreamKind, durable: &str) -> Result<(), BusError> {
        match &self.inner {
            Inner::Nats(bus) => bus.delete_consumer(&self.topology, kind, durable).await,
            Inner::Memory(bus) => {
                bus.delete_consumer(kind, durable);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_prepended_verbatim_to_names_and_subjects() {
        let t = Topology::new("t1_").unwrap();
        assert_eq!(
            t.stream_name(StreamKind::AccountEvents),
            "t1_ACCOUNT_EVENTS"
        );
        assert_eq!(
            t.account_event_subject("100000000001", "PasswordChanged"),
            "t1_accounts.100000000001.PasswordChanged"
        );
        assert_eq!(
            t.notification_request_subject("100000000001"),
            "t1_notifications.requests.100000000001"
        );
        assert_eq!(t.anchor_subject(), "t1_audit.anchors");
        assert_eq!(
            t.classify("t1_accounts.1.X"),
            Some((StreamKind::AccountEvents, "accounts.1.X"))
        );
        assert!(Topology::new("a.b").is_err());
    }

    #[test]
    fn six_digit_runs_are_found_and_other_runs_are_not() {
        assert!(has_six_digit_run("code 123456."));
        assert!(has_six_digit_run("123456"));
        assert!(!has_six_digit_run("account 100000000001"));
        assert!(!has_six_digit_run("+86 138****5678 on 2026-11-26 10:00"));
        assert!(!has_six_digit_run("12345 1234567"));
    }

    /// Issue 13, finding 9: digits of other scripts, and runs split by characters a reader
    /// does not see as a break, still look like a code.
    #[test]
    fn six_digit_runs_in_other_scripts_or_split_invisibly_are_found() {
        assert!(has_six_digit_run("code １２３４５６"));
        assert!(has_six_digit_run("code ١٢٣٤٥٦"));
        assert!(has_six_digit_run("code ۱۲۳۴۵۶"));
        for joiner in [
            '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00A0}', '\u{202F}',
        ] {
            let text = format!("code 123{joiner}456");
            assert!(has_six_digit_run(&text), "{text:?}");
        }
        assert!(!has_six_digit_run("123 456"), "a plain space is a break");
        assert!(!has_six_digit_run("１２３４５６７"), "seven is not six");
    }

    #[test]
    fn a_subscribed_message_that_looks_like_a_code_is_refused() {
        let request = NotificationRequest {
            kind: NotificationKind::Arrears,
            subject: "Invoice overdue".into(),
            body: "Pay invoice 123456 now".into(),
        };
        assert_eq!(request.validate(), Err(InvalidNotification::LooksLikeACode));
    }
}
