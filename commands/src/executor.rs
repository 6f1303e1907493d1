//! Runs a command against an aggregate: load its events, fold them, decide, then append the new
//! events with their metadata and hash chain in one transaction.
//!
//! This is cqrs-es's `PersistedEventStore` loop written out (pure event sourcing, no snapshots,
//! no inline queries; DESIGN §5), because every event needs metadata of its own — its
//! `event_id` and a `chain_hash` over the previous event — which the framework's `commit`
//! cannot give (it stamps one metadata map on the whole batch). The ES crates' repositories do
//! the reading and the inserting. A concurrent writer that took the same sequence makes the
//! insert fail with a unique violation; the command is then decided again on fresh state, with
//! jittered backoff, for up to ten seconds. Writers of one stream in the same process take turns
//! on a per-stream lock, so only writers in other processes race. So no acknowledged command is lost, and none
//! is applied twice.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, Notify};

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistenceError, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use domain::account::AccountEvent;
use domain::chain::{chain_hash, CHAIN_HASH_KEY, GENESIS};
use domain::stored::{from_payload, to_payload};
use domain::{Account, Challenge, DomainServices, Recovery};
use rand::Rng;
use serde_json::Value;
use tracing::{debug, instrument, warn};
use uuid::Uuid;

use crate::context::CommandContext;
use crate::store::{occurred_at_text, ResetIndexEntry, Store, StoreError};

/// How long a command keeps deciding again after losing races for its stream (to writers in
/// other processes: writers in this process take turns on a per-stream lock).
const CONFLICT_DEADLINE: Duration = Duration::from_secs(10);

/// What an aggregate's new events add to the write side's indexes, written in the same
/// transaction as the events (so a reset link works the moment its event is committed).
pub trait Indexed: Aggregate {
    /// The reset-token index rows of `events`, decided for aggregate `id`.
    fn reset_index(id: &str, events: &[Self::Event]) -> Vec<ResetIndexEntry> {
        let _ = (id, events);
        Vec::new()
    }
}

impl Indexed for Account {
    fn reset_index(id: &str, events: &[AccountEvent]) -> Vec<ResetIndexEntry> {
        events
            .iter()
            .filter_map(|event| match event {
                AccountEvent::ResetTokenIssued {
                    token_digest,
                    expires_at,
                    ..
                } => Some(ResetIndexEntry {
                    token_digest: token_digest.as_hex().to_owned(),
                    account_id: id.to_owned(),
                    expires_at: *expires_at,
                }),
                _ => None,
            })
            .collect()
    }
}

impl Indexed for Challenge {}

impl Indexed for Recovery {}

/// An aggregate as loaded from the store. The state is shared with the executor's memo, so
/// handing it to a reader copies nothing (an account's state holds its live codes, links and
/// servers: copying it on every request was most of a cheap command's CPU).
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub state: Arc<A>,
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
    /// The state after the command (shared with the memo).
    pub state: Arc<A>,
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
// Each entry is a `Loaded<A>`, whose state is itself an `Arc`: taking one out is two counts.

/// Runs commands on the event store.
#[derive(Clone)]
pub struct Executor {
    store: Store,
    services: DomainServices,
    cache: StateCache,
    /// Woken after every commit, so in-process readers (projector, relay) need not wait for
    /// their next poll.
    commits: Arc<Notify>,
    /// One lock per stream being written in this process: writers of one stream take turns
    /// instead of racing for its next sequence and retrying.
    stream_locks: StreamLocks,
}

type StreamLocks = Arc<Mutex<HashMap<String, Weak<AsyncMutex<()>>>>>;

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
            commits: Arc::new(Notify::new()),
            stream_locks: StreamLocks::default(),
        }
    }

    /// The lock of stream `key`, shared by every writer of it in this process.
    fn stream_lock(&self, key: &str) -> Arc<AsyncMutex<()>> {
        let mut locks = self.stream_locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        if locks.len() >= CACHE_CAPACITY {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(AsyncMutex::new(()));
        locks.insert(key.to_owned(), Arc::downgrade(&lock));
        lock
    }

    /// Notified after each commit of this process.
    pub fn commits(&self) -> Arc<Notify> {
        self.commits.clone()
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
            state: Arc::new(A::default()),
            sequence: 0,
            head: GENESIS.to_owned(),
        });
        let rows = (self.store.events())
            .stream(A::TYPE, id, loaded.sequence)
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
            Arc::make_mut(&mut loaded.state).apply(event);
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

    /// Aggregate `id` as of sequence `head` at least: the memo when it is that far (no read),
    /// else [`Self::load`]. `head` must come from the store (a read of the stream's last
    /// sequence), so the answer is the state at some instant during the caller's request.
    pub async fn load_as_of<A: Aggregate + Clone + 'static>(
        &self,
        id: &str,
        head: u64,
    ) -> Result<Loaded<A>, StoreError> {
        match self.cached::<A>(id) {
            Some(loaded) if loaded.sequence >= head => Ok(loaded),
            _ => self.load::<A>(id).await,
        }
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
        A: Indexed<Services = DomainServices> + Clone + 'static,
        A::Command: Clone,
    {
        let lock = self.stream_lock(&cache_key::<A>(id));
        let _turn = lock.lock().await;
        let deadline = tokio::time::Instant::now() + CONFLICT_DEADLINE;
        let mut attempt: u32 = 0;
        // Decide on the remembered state without reading first: the append of sequence n+1
        // fails if another process wrote it, and only then is the stream read again. The unique
        // key, not the read, is what makes a decision current.
        // A decision that appends nothing (a refusal, or nothing to do) meets no unique key, so
        // one taken on remembered state is taken again on the stream as stored: another process
        // (a second gateway) may have written what makes it succeed.
        let mut remembered = self.cached::<A>(id);
        loop {
            let (loaded, current) = match remembered.take() {
                Some(loaded) => (loaded, false),
                None => (self.load::<A>(id).await?, true),
            };
            // The one copy a command makes: deciding applies its events to the state.
            let mut state = Arc::unwrap_or_clone(loaded.state);
            let sink = EventSink::default();
            let decided = state.handle(command.clone(), &self.services, &sink).await;
            let events = sink.collect().await;
            if !current && (decided.is_err() || events.is_empty()) {
                continue;
            }
            decided.map_err(CommandError::Domain)?;
            if events.is_empty() {
                return Ok(Committed {
                    events,
                    sequence: loaded.sequence,
                    state: Arc::new(state),
                });
            }
            let occurred_at = occurred_at_text(self.services.clock.now());
            let rows = serialize::<A>(
                id,
                loaded.sequence,
                &loaded.head,
                &events,
                context,
                &occurred_at,
            )?;
            let resets = A::reset_index(id, &events);
            match self.store.events().append(A::TYPE, &rows, &resets).await {
                Ok(()) => {
                    debug!(events = events.len(), "committed");
                    self.commits.notify_waiters();
                    let sequence = loaded.sequence + events.len() as u64;
                    let head = rows
                        .last()
                        .and_then(|row| row.metadata.get(CHAIN_HASH_KEY))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let state = Arc::new(state);
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
                    if tokio::time::Instant::now() < deadline =>
                {
                    attempt += 1;
                    let jitter = rand::rng().random_range(1..=(2u64 << attempt.min(5)));
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
