//! The relay (DESIGN §3.3): a catch-up consumer of the event log that publishes each account
//! event to `ACCOUNT_EVENTS` and each sign-up / sign-in code to `CHALLENGE_CODES`, then moves
//! its checkpoint.
//!
//! - Subject `accounts.<account_id>.<EventType>`, header `Nats-Msg-Id: <account_id>:<sequence>`,
//!   payload the envelope (`account_id`, `sequence`, `type`, `version`, `occurred_at`,
//!   `payload`, `metadata`, `chain_hash`) with every `password_hash` removed; sealed codes and
//!   tokens stay sealed. Recovery-stream events and the other challenge events are not published.
//! - Publishes are pipelined in waves: each wave holds at most one event per stream (the
//!   earliest not yet published), all sent before any ack is awaited; the next wave starts
//!   when every ack of this one came back. So an account's later event is never sent before its
//!   earlier one is stored, and a batch of many accounts still has hundreds of acks in flight.
//! - The checkpoint moves only over the events whose acks all came back (the longest acked
//!   prefix of the batch), compare-and-set against the value the batch started from. A retried
//!   batch re-publishes with the same message ids: JetStream drops the duplicates within its
//!   window, and consumers de-duplicate on `(account, sequence)` beyond it.
//! - One active relay: `run` holds a PostgreSQL advisory lock for its lifetime.

use crate::batches::{run_batches, Pacing};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::stored::{Checkpoint, RecordedEvent};
use serde_json::{json, Map, Value};
use tokio::sync::{watch, Notify};
use tracing::{debug, info, instrument};

use crate::bus::{Bus, BusError, OutgoingMessage};
use crate::db::{ReadError, ReadStore};
use crate::log::EventLog;

/// The relay's checkpoint row and lock name.
pub const RELAY: &str = "bus_relay";

/// How often an idle relay looks for events written by other processes.
const POLL: Duration = Duration::from_millis(200);

const ACCOUNT: &str = "Account";
const CHALLENGE: &str = "Challenge";
const CHALLENGE_ISSUED: &str = "ChallengeIssued";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("event log: {0}")]
    Log(#[source] domain::PortError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("another relay moved the checkpoint")]
    CheckpointMoved,
}

pub struct Relay<L> {
    log: Arc<L>,
    db: ReadStore,
    bus: Bus,
    batch_size: u32,
    progress: watch::Sender<Checkpoint>,
}

impl<L: EventLog> Relay<L> {
    pub fn new(log: Arc<L>, db: ReadStore, bus: Bus) -> Self {
        Self {
            log,
            db,
            bus,
            batch_size: 1000,
            progress: watch::Sender::new(Checkpoint::default()),
        }
    }

    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The checkpoint after each batch of this instance.
    pub fn progress(&self) -> watch::Receiver<Checkpoint> {
        self.progress.subscribe()
    }

    /// The stored checkpoint.
    pub async fn checkpoint(&self) -> Result<Checkpoint, RelayError> {
        Ok(self.db.relay().relay_checkpoint(RELAY).await?)
    }

    /// Moves the checkpoint back to the start of the log (operations: re-publish everything;
    /// JetStream and the consumers drop what they already have).
    pub async fn reset_checkpoint(&self) -> Result<(), RelayError> {
        self.db.relay().reset_relay_checkpoint(RELAY).await?;
        Ok(())
    }

    /// Publishes one batch. Returns how many events it read (0: caught up).
    #[instrument(skip_all, fields(relay = RELAY))]
    pub async fn step(&self) -> Result<usize, RelayError> {
        let from = self.checkpoint().await?;
        let events = self
            .log
            .read_after(from, self.batch_size)
            .await
            .map_err(RelayError::Log)?;
        if events.is_empty() {
            return Ok(0);
        }
        let topology = self.bus.topology();
        // Per stream, its messages in log order; streams in order of first appearance.
        let mut published = vec![true; events.len()];
        let mut queues: Vec<VecDeque<(usize, OutgoingMessage)>> = Vec::new();
        let mut queue_of: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            let Some(message) = message_for(topology, event) else {
                continue;
            };
            published[i] = false;
            let key = (event.aggregate_type.as_str(), event.aggregate_id.as_str());
            let q = *queue_of.entry(key).or_insert_with(|| {
                queues.push(VecDeque::new());
                queues.len() - 1
            });
            queues[q].push_back((i, message));
        }
        let mut failure = None;
        let mut sent = 0usize;
        loop {
            let wave: Vec<(usize, OutgoingMessage)> =
                queues.iter_mut().filter_map(VecDeque::pop_front).collect();
            if wave.is_empty() {
                break;
            }
            let (indexes, messages): (Vec<usize>, Vec<OutgoingMessage>) = wave.into_iter().unzip();
            let results = self.bus.publish_all(messages).await;
            for (i, result) in indexes.into_iter().zip(results) {
                match result {
                    Ok(_) => {
                        published[i] = true;
                        sent += 1;
                    }
                    Err(e) => failure = Some(e),
                }
            }
            if failure.is_some() {
                break;
            }
        }
        let acked = published.iter().take_while(|p| **p).count();
        if acked > 0 {
            let to = events[acked - 1].checkpoint;
            self.move_checkpoint(from, to).await?;
            self.progress.send_replace(to);
        }
        metrics::counter!("accountd_relay_published_total").increment(sent as u64);
        if let Some(e) = failure {
            metrics::counter!("accountd_relay_failures_total").increment(1);
            return Err(e.into());
        }
        debug!(events = events.len(), published = sent, "relayed");
        Ok(events.len())
    }

    /// Steps until the log has nothing more.
    pub async fn catch_up(&self) -> Result<(), RelayError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    /// Runs until `shutdown` resolves: woken by `commits` (local writes) and polling for the
    /// rest. A failed batch is retried after a pause; nothing is skipped.
    pub async fn run(&self, commits: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let lock_name = format!("accountd.{RELAY}");
        let _lease = tokio::select! {
            lease = self.db.relay().exclusive(&lock_name) => lease,
            () = &mut shutdown => return,
        };
        info!("relay active");
        let pacing = Pacing {
            poll: POLL,
            full: self.batch_size as usize,
        };
        run_batches("relay", &commits, pacing, shutdown, || self.step()).await;
    }

    async fn move_checkpoint(&self, from: Checkpoint, to: Checkpoint) -> Result<(), RelayError> {
        if self
            .db
            .relay()
            .move_relay_checkpoint(RELAY, from, to)
            .await?
        {
            Ok(())
        } else {
            Err(RelayError::CheckpointMoved)
        }
    }
}

/// The bus message of a stored event, or `None` for events that are not published.
pub fn message_for(
    topology: &crate::bus::Topology,
    event: &RecordedEvent,
) -> Option<OutgoingMessage> {
    match event.aggregate_type.as_str() {
        ACCOUNT => {
            let envelope = envelope("account_id", event);
            Some(OutgoingMessage {
                subject: topology.account_event_subject(&event.aggregate_id, &event.event_type),
                message_id: Some(format!("{}:{}", event.aggregate_id, event.sequence)),
                payload: serde_json::to_vec(&envelope).ok()?,
            })
        }
        CHALLENGE if event.event_type == CHALLENGE_ISSUED => {
            let envelope = envelope("challenge_id", event);
            Some(OutgoingMessage {
                subject: topology.challenge_code_subject(&event.aggregate_id),
                message_id: Some(format!(
                    "challenge:{}:{}",
                    event.aggregate_id, event.sequence
                )),
                payload: serde_json::to_vec(&envelope).ok()?,
            })
        }
        _ => None,
    }
}

/// The envelope of SPEC §5, keyed by `id_key`, with password hashes removed.
pub fn envelope(id_key: &str, event: &RecordedEvent) -> Value {
    let mut metadata = match &event.metadata {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let chain_hash = metadata
        .remove(domain::chain::CHAIN_HASH_KEY)
        .unwrap_or(Value::Null);
    let occurred_at = metadata
        .get("occurred_at")
        .cloned()
        .unwrap_or_else(|| Value::String(event.recorded_at.to_rfc3339()));
    let mut payload = event.payload.clone();
    redact_password_hashes(&mut payload);
    let mut envelope = json!({
        "sequence": event.sequence,
        "type": event.event_type,
        "version": event.event_version,
        "occurred_at": occurred_at,
        "payload": payload,
        "metadata": Value::Object(metadata),
        "chain_hash": chain_hash,
    });
    envelope[id_key] = Value::String(event.aggregate_id.clone());
    envelope
}

/// Removes every `password_hash` field, at any depth.
pub fn redact_password_hashes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("password_hash");
            map.values_mut().for_each(redact_password_hashes);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_password_hashes),
        _ => {}
    }
}
