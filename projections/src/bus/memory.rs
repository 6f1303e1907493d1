//! The in-process bus of the embedded default: the same streams and the same consumer contract
//! as JetStream (de-duplication by message id within two minutes, durable consumers that get
//! every message from the start of the stream, explicit acks, nak with a delay, redelivery after
//! the ack wait), held in memory.
//!
//! Messages live until every consumer of their stream has acked them (or, with no consumer yet,
//! up to [`RETAINED_WITHOUT_CONSUMERS`] of them). Nothing survives the process: see
//! docs/adr/0004-bus-and-notifier.md for what that means for the embedded store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Acker as DeliveryAcker, BusError, Deliveries, Delivery, OutgoingMessage, Published, StreamKind,
    Topology,
};

/// How long a message id is remembered for de-duplication (JetStream's default window).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long a consumer may hold a message before it is delivered again.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// Messages kept in a stream nobody consumes yet.
pub const RETAINED_WITHOUT_CONSUMERS: usize = 100_000;

#[derive(Clone, Default)]
pub struct MemoryBus {
    streams: Arc<HashMap<StreamKind, Arc<MemoryStream>>>,
}

impl MemoryBus {
    pub(super) fn new() -> Self {
        Self {
            streams: Arc::new(
                StreamKind::ALL
                    .into_iter()
                    .map(|k| (k, Arc::new(MemoryStream::default())))
                    .collect(),
            ),
        }
    }

    fn stream(&self, kind: StreamKind) -> &Arc<MemoryStream> {
        // Every kind was inserted by `new`.
        &self.streams[&kind]
    }

    pub(super) fn publish(
        &self,
        topology: &Topology,
        message: OutgoingMessage,
    ) -> Result<Published, BusError> {
        let (kind, _) = topology.classify(&message.subject).ok_or_else(|| {
            BusError::Publish(format!("no stream for subject {}", message.subject))
        })?;
        let stream = self.stream(kind);
        let published = stream.state().append(message);
        stream.changed.notify_waiters();
        Ok(published)
    }

    pub(super) fn consumer(&self, kind: StreamKind, durable: &str) -> MemoryConsumer {
        let stream = self.stream(kind).clone();
        {
            let mut state = stream.state();
            let first = state.first_sequence();
            state
                .consumers
                .entry(durable.to_owned())
                .or_insert_with(|| ConsumerState::starting_at(first));
        }
        MemoryConsumer {
            stream,
            kind,
            name: durable.to_owned(),
        }
    }

    pub(super) fn consumer_lag(&self, kind: StreamKind, durable: &str) -> u64 {
        let state = self.stream(kind).state();
        let first = state.first_sequence();
        state.consumers.get(durable).map_or(0, |c| {
            let undelivered = (state.last_sequence + 1).saturating_sub(c.next.max(first));
            undelivered + c.pending.len() as u64
        })
    }

    pub(super) fn delete_consumer(&self, kind: StreamKind, durable: &str) {
        let stream = self.stream(kind);
        let mut state = stream.state();
        state.consumers.remove(durable);
        state.trim();
    }
}

#[derive(Default)]
struct MemoryStream {
    state: Mutex<StreamState>,
    /// Woken when a message is stored, acked or nak'ed.
    changed: Notify,
}

impl MemoryStream {
    fn state(&self) -> MutexGuard<'_, StreamState> {
        // A panic while holding the lock leaves consistent data (every update is one step).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct StreamState {
    messages: VecDeque<Stored>,
    last_sequence: u64,
    recent_ids: RecentIds,
    consumers: HashMap<String, ConsumerState>,
}

/// The message ids published within the duplicate window, as JetStream keeps them: a publish
/// with one of them is a duplicate. Kept in publication order too, so that forgetting the
/// expired ones costs only what expires (the stream of one busy second holds thousands).
#[derive(Default)]
struct RecentIds {
    by_id: HashMap<String, u64>,
    in_order: VecDeque<(Instant, String)>,
}

impl RecentIds {
    fn remember(&mut self, id: &str, sequence: u64, now: Instant) {
        self.by_id.insert(id.to_owned(), sequence);
        self.in_order.push_back((now, id.to_owned()));
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some((at, _)) = self.in_order.front() {
            if now.duration_since(*at) < DUPLICATE_WINDOW {
                break;
            }
            if let Some((_, id)) = self.in_order.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
}

#[derive(Clone)]
struct Stored {
    sequence: u64,
    subject: String,
    message_id: Option<String>,
    payload: Arc<Vec<u8>>,
    published: DateTime<Utc>,
}

struct ConsumerState {
    /// The next stream sequence never delivered to this consumer.
    next: u64,
    /// Delivered and not acked, by stream sequence.
    pending: BTreeMap<u64, Pending>,
}

struct Pending {
    delivered: u64,
    /// When it may be delivered again (after a nak delay, or the ack wait).
    due: Instant,
}

impl ConsumerState {
    fn starting_at(first: u64) -> Self {
        Self {
            next: first,
            pending: BTreeMap::new(),
        }
    }

    /// The lowest sequence this consumer still needs.
    fn floor(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next)
            .min(self.next)
    }
}

impl StreamState {
    fn first_sequence(&self) -> u64 {
        self.messages
            .front()
            .map_or(self.last_sequence + 1, |m| m.sequence)
    }

    fn append(&mut self, message: OutgoingMessage) -> Published {
        let now = Instant::now();
        self.recent_ids.forget_before(now);
        if let Some(id) = &message.message_id {
            if let Some(&sequence) = self.recent_ids.by_id.get(id) {
                return Published {
                    stream_sequence: sequence,
                    duplicate: true,
                };
            }
        }
        self.last_sequence += 1;
        let sequence = self.last_sequence;
        if let Some(id) = &message.message_id {
            self.recent_ids.remember(id, sequence, now);
        }
        self.messages.push_back(Stored {
            sequence,
            subject: message.subject,
            message_id: message.message_id,
            payload: Arc::new(message.payload),
            published: Utc::now(),
        });
        self.trim();
        Published {
            stream_sequence: sequence,
            duplicate: false,
        }
    }

    /// Drops what every consumer has acked (or the oldest, past the cap, with no consumers).
    fn trim(&mut self) {
        if self.consumers.is_empty() {
            while self.messages.len() > RETAINED_WITHOUT_CONSUMERS {
                self.messages.pop_front();
            }
            return;
        }
        let floor = self
            .consumers
            .values()
            .map(ConsumerState::floor)
            .min()
            .unwrap_or(u64::MAX);
        while self.messages.front().is_some_and(|m| m.sequence < floor) {
            self.messages.pop_front();
        }
    }

    fn get(&self, sequence: u64) -> Option<&Stored> {
        let first = self.messages.front()?.sequence;
        let index = usize::try_from(sequence.checked_sub(first)?).ok()?;
        self.messages.get(index)
    }

    /// The next delivery for consumer `name`, or when to look again.
    fn next_for(&mut self, name: &str, now: Instant) -> Result<(Stored, u64), Option<Instant>> {
        let first = self.first_sequence();
        let Some(consumer) = self.consumers.get_mut(name) else {
            return Err(None);
        };
        // Redeliveries first, lowest sequence first.
        let due = consumer
            .pending
            .iter()
            .find(|(_, p)| p.due <= now)
            .map(|(s, _)| *s);
        let sequence = match due {
            Some(sequence) => Some(sequence),
            None => {
                consumer.next = consumer.next.max(first);
                (consumer.next <= self.last_sequence).then(|| {
                    consumer.next += 1;
                    consumer.next - 1
                })
            }
        };
        let Some(sequence) = sequence else {
            return Err(consumer.pending.values().map(|p| p.due).min());
        };
        let entry = consumer.pending.entry(sequence).or_insert(Pending {
            delivered: 0,
            due: now,
        });
        entry.delivered += 1;
        entry.due = now + ACK_WAIT;
        let delivered = entry.delivered;
        match self.get(sequence).cloned() {
            Some(stored) => Ok((stored, delivered)),
            None => {
                // Trimmed away under this consumer (it was created after the cap dropped it).
                if let Some(consumer) = self.consumers.get_mut(name) {
                    consumer.pending.remove(&sequence);
                }
                Err(Some(now))
            }
        }
    }
}

/// A durable consumer of one in-process stream.
pub struct MemoryConsumer {
    stream: Arc<MemoryStream>,
    kind: StreamKind,
    name: String,
}

impl MemoryConsumer {
    pub(super) fn deliveries(&self) -> Deliveries {
        let stream = self.stream.clone();
        let kind = self.kind;
        let name = self.name.clone();
        Box::pin(futures::stream::unfold(
            (stream, name),
            move |(stream, name)| async move {
                loop {
                    let changed = stream.changed.notified();
                    let next = stream.state().next_for(&name, Instant::now());
                    match next {
                        Ok((stored, delivered)) => {
                            drop(changed);
                            let delivery = Delivery {
                                kind,
                                subject: stored.subject,
                                message_id: stored.message_id,
                                payload: stored.payload.as_ref().clone(),
                                stream_sequence: stored.sequence,
                                delivered,
                                published: stored.published,
                                acker: DeliveryAcker::Memory(Acker {
                                    stream: stream.clone(),
                                    consumer: name.clone(),
                                    sequence: stored.sequence,
                                }),
                            };
                            return Some((Ok(delivery), (stream, name)));
                        }
                        Err(wake_at) => {
                            let wake_at = wake_at
                                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                            tokio::select! {
                                () = changed => {}
                                () = tokio::time::sleep_until(wake_at) => {}
                            }
                        }
                    }
                }
            },
        ))
    }
}

/// Acks or naks one in-process delivery.
pub struct Acker {
    stream: Arc<MemoryStream>,
    consumer: String,
    sequence: u64,
}

impl Acker {
    pub(super) fn ack(&self) {
        {
            let mut state = self.stream.state();
            if let Some(consumer) = state.consumers.get_mut(&self.consumer) {
                consumer.pending.remove(&self.sequence);
            }
            state.trim();
        }
        self.stream.changed.notify_waiters();
    }

    pub(super) fn nak(&self, delay: Duration) {
        {
            let mut state = self.stream.state();
            if let Some(pending) = state
                .consumers
                .get_mut(&self.consumer)
                .and_then(|c| c.pending.get_mut(&self.sequence))
            {
                pending.due = Instant::now() + delay;
            }
        }
        self.stream.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> OutgoingMessage {
        OutgoingMessage {
            subject: "s".to_owned(),
            message_id: Some(id.to_owned()),
            payload: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_id_is_a_duplicate_within_the_window_and_new_after_it() {
        let mut state = StreamState::default();
        assert!(!state.append(message("a")).duplicate);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(!state.append(message("b")).duplicate);
        let again = state.append(message("a"));
        assert!(again.duplicate && again.stream_sequence == 1);

        // "a" leaves the window; "b", published a minute later, is still in it.
        tokio::time::advance(DUPLICATE_WINDOW - Duration::from_secs(30)).await;
        let a = state.append(message("a"));
        assert!(!a.duplicate && a.stream_sequence == 3);
        assert!(state.append(message("b")).duplicate);
        assert_eq!(state.recent_ids.by_id.len(), 2);
        assert_eq!(state.recent_ids.in_order.len(), 2);
    }
}
