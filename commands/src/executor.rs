//! Runs a command against an aggregate: load its events, fold them, decide, then append the new
//! events with their metadata and hash chain in one transaction.
//!
//! This is cqrs-es's `PersistedEventStore` loop written out (pure event sourcing, no snapshots,
//! no inline queries; DESIGN §5), because every event needs metadata of its own — its
//! `event_id` and a `chain_hash` over the previous event — which the framework's `commit`
//! cannot give (it stamps one metadata map on the whole batch). The ES crates' repositories do
//! the reading and the inserting. A concurrent writer that took the same sequence makes the
//! insert fail with a unique violation; the command is then decided again on fresh state, a
//! bounded number of times with jittered backoff. So no acknowledged command is lost, and none
//! is applied twice.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::SecondsFormat;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use domain::chain::{chain_hash, CHAIN_HASH_KEY, GENESIS};
use domain::stored::{from_payload, to_payload};
use domain::DomainServices;
use rand::Rng;
use serde_json::Value;
use tracing::{debug, instrument, warn};
use uuid::Uuid;

use crate::context::CommandContext;
use crate::store::{Store, StoreError};

/// How many times a command is decided again after losing a race for a sequence.
const CONFLICT_RETRIES: u32 = 8;

/// An aggregate as loaded from the store.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: A,
    /// The sequence of the last event (0 for a stream with none).
    pub sequence: u64,
    /// The chain hash of the last event (the genesis hash for a stream with none).
    pub head: String,
}

/// What a command committed.
#[derive(Debug, Clone)]
pub struct Committed<A: Aggregate> {
    pub events: Vec<A::Event>,
    /// The sequence of the last event written (unchanged when the command wrote none).
    pub sequence: u64,
    /// The state after the command.
    pub state: A,
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it.
    #[error(transparent)]
    Domain(E),
    /// The store failed, or the stream stayed contended after every retry.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many folded aggregates the executor keeps in memory.
const CACHE_CAPACITY: usize = 10_000;

/// Folded aggregates by `TYPE:id`, each as of some sequence. Only a memo: every command still
/// reads the events after the memo's sequence before it decides, so the cache can be stale or
/// empty without changing any outcome; it saves re-reading and re-folding whole streams.
type StateCache = Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>;

/// Runs commands on the event store.
#[derive(Clone)]
pub struct Executor {
    store: Store,
    services: DomainServices,
    cache: StateCache,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Executor {
    pub fn new(store: Store, services: DomainServices) -> Self {
        Self {
            store,
            services,
            cache: StateCache::default(),
        }
    }

    fn cached<A: Aggregate + Clone + 'static>(&self, id: &str) -> Option<Loaded<A>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(&cache_key::<A>(id))
            .and_then(|entry| entry.downcast_ref::<Loaded<A>>())
            .cloned()
    }

    fn remember<A: Aggregate + Clone + 'static>(&self, id: &str, loaded: Loaded<A>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            // Crude but bounded: forget everything; the next commands re-read their streams.
            cache.clear();
        }
        cache.insert(cache_key::<A>(id), Arc::new(loaded));
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn services(&self) -> &DomainServices {
        &self.services
    }

    /// The aggregate `id` of type `A`, folded from all its events.
    pub async fn load<A: Aggregate + Clone + 'static>(
        &self,
        id: &str,
    ) -> Result<Loaded<A>, StoreError> {
        let mut loaded = self.cached::<A>(id).unwrap_or_else(|| Loaded {
            state: A::default(),
            sequence: 0,
            head: GENESIS.to_owned(),
        });
        let rows = self
            .store
            .stream_events_after::<A>(id, loaded.sequence)
            .await?;
        let fresh = !rows.is_empty();
        for row in rows {
            let sequence = row.sequence as u64;
            let event: A::Event = from_payload(&row.event_type, &row.event_version, row.payload)
                .map_err(|source| StoreError::Corrupt {
                    aggregate_id: id.to_owned(),
                    sequence,
                    source,
                })?;
            loaded.state.apply(event);
            loaded.sequence = sequence;
            loaded.head = row
                .metadata
                .get(CHAIN_HASH_KEY)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
        if fresh {
            self.remember(id, loaded.clone());
        }
        Ok(loaded)
    }

    /// Decides `command` on aggregate `id` and appends what it decided.
    #[instrument(skip_all, fields(aggregate = A::TYPE, id = %id))]
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        context: &CommandContext,
    ) -> Result<Committed<A>, CommandError<A::Error>>
    where
        A: Aggregate<Services = DomainServices> + Clone + 'static,
        A::Command: Clone,
    {
        let mut attempt = 0;
        loop {
            let loaded = self.load::<A>(id).await?;
            let mut state = loaded.state;
            let sink = EventSink::default();
            state
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(CommandError::Domain)?;
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(Committed {
                    events,
                    sequence: loaded.sequence,
                    state,
                });
            }
            let occurred_at = self
                .services
                .clock
                .now()
                .to_rfc3339_opts(SecondsFormat::Micros, true);
            let rows = serialize::<A>(
                id,
                loaded.sequence,
                &loaded.head,
                &events,
                context,
                &occurred_at,
            )?;
            match self.store.append::<A>(&rows).await {
                Ok(()) => {
                    debug!(events = events.len(), "committed");
                    let sequence = loaded.sequence + events.len() as u64;
                    let head = rows
                        .last()
                        .and_then(|row| row.metadata.get(CHAIN_HASH_KEY))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    self.remember(
                        id,
                        Loaded {
                            state: state.clone(),
                            sequence,
                            head,
                        },
                    );
                    return Ok(Committed {
                        sequence,
                        events,
                        state,
                    });
                }
                Err(StoreError::Persistence(PersistenceError::OptimisticLockError))
                    if attempt < CONFLICT_RETRIES =>
                {
                    attempt += 1;
                    let jitter = rand::rng().random_range(1..=5u64 << attempt.min(5));
                    warn!(attempt, "lost a race for the stream; deciding again");
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The rows for `events` following sequence `after` whose chain head is `head`.
fn serialize<A: Aggregate>(
    id: &str,
    after: u64,
    head: &str,
    events: &[A::Event],
    context: &CommandContext,
    occurred_at: &str,
) -> Result<Vec<SerializedEvent>, StoreError> {
    let mut previous = head.to_owned();
    let mut rows = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let sequence = after + 1 + i as u64;
        let event_type = event.event_type();
        let event_version = event.event_version();
        let payload = to_payload(event).map_err(|source| StoreError::Corrupt {
            aggregate_id: id.to_owned(),
            sequence,
            source,
        })?;
        let mut metadata = context.metadata(&Uuid::now_v7().to_string(), occurred_at);
        let hash = chain_hash(
            &previous,
            &event_type,
            &event_version,
            &payload,
            &Value::Object(metadata.clone()),
        );
        metadata.insert(CHAIN_HASH_KEY.into(), Value::String(hash.clone()));
        previous = hash;
        rows.push(SerializedEvent::new(
            id.to_owned(),
            sequence as usize,
            A::TYPE.to_owned(),
            event_type,
            event_version,
            payload,
            Value::Object(metadata),
        ));
    }
    Ok(rows)
}

fn cache_key<A: Aggregate>(id: &str) -> String {
    format!("{}:{id}", A::TYPE)
}
