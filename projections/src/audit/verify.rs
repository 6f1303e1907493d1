//! Verification (`GET …/verification`, `accountd audit verify [ID | --all]`): the stream's
//! hash chain recomputed with `domain::chain::verify`, then checked against the latest anchor.
//!
//! The first broken sequence is the smallest of:
//! - the chain's first broken sequence (an event edited, deleted, moved or forged);
//! - when the stream's last sequence is below its anchored sequence (its newest events were
//!   deleted), the first missing one: last sequence + 1;
//! - when the event at the anchored sequence carries another chain hash, that sequence.
//!
//! The anchored head is read before the stream, so a command committing in between can only
//! make the stream longer than its anchor, never shorter.
//!
//! `verify --all` walks every account stream once in key order, checks the streams on the
//! blocking pool while the next page is read, and also checks the streams the latest anchor
//! holds but the store no longer does (every event deleted: broken at sequence 1).

use domain::PortError;
use std::collections::BTreeMap;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};

use domain::chain::{self, Link, CHAIN_HASH_KEY};
use domain::stored::RecordedEvent;
use domain::values::AccountId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;

use super::{Anchor, AnchoredHead, Audit, AuditError, AuditLog};

/// How many events one read of `verify --all` takes.
const SCAN_PAGE: u32 = 10_000;
/// How many events one verification task checks.
const TASK_EVENTS: usize = 20_000;

/// What verifying one stream found (the body of `GET …/verification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamVerification {
    pub ok: bool,
    pub events_checked: u64,
    /// `null` when `ok`.
    pub first_broken_sequence: Option<u64>,
}

/// A stream that did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenStream {
    pub account_id: String,
    #[serde(flatten)]
    pub verification: StreamVerification,
}

/// What verifying every stream found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyAllReport {
    /// Streams verified (including anchored streams the store no longer holds).
    pub streams: u64,
    /// Events read from the store.
    pub events: u64,
    /// The streams that did not verify, by account id.
    pub broken: Vec<BrokenStream>,
    /// The latest anchor, and whether its stored heads still fold into its root hash.
    pub anchor: Option<Anchor>,
    pub anchor_intact: bool,
}

impl VerifyAllReport {
    pub fn ok(&self) -> bool {
        self.broken.is_empty() && self.anchor_intact
    }
}

/// Checks one stream's events (in sequence order) against its chain and its anchored head.
pub fn check_stream(
    events: &[RecordedEvent],
    anchored: Option<&AnchoredHead>,
) -> StreamVerification {
    let chain = chain::verify(events.iter().map(|e| Link {
        sequence: e.sequence,
        event_type: &e.event_type,
        event_version: &e.event_version,
        payload: &e.payload,
        metadata: &e.metadata,
    }));
    let anchor_break = anchored.and_then(|anchored| {
        let last = events.last().map_or(0, |e| e.sequence);
        if last < anchored.sequence {
            return Some(last + 1);
        }
        let stored = events
            .iter()
            .find(|e| e.sequence == anchored.sequence)
            .and_then(|e| e.metadata.get(CHAIN_HASH_KEY))
            .and_then(Value::as_str);
        (stored != Some(anchored.chain_hash.as_str())).then_some(anchored.sequence)
    });
    let first_broken_sequence = match (chain.first_broken_sequence, anchor_break) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    StreamVerification {
        ok: first_broken_sequence.is_none(),
        events_checked: chain.events_checked,
        first_broken_sequence,
    }
}

impl<L: AuditLog> Audit<L> {
    /// Verifies `account`'s stream; `None` when it has no events and was never anchored (no
    /// such account).
    pub async fn verify(
        &self,
        account: &AccountId,
    ) -> Result<Option<StreamVerification>, AuditError> {
        let anchored = self.anchored_head(account.as_str()).await?;
        let events = self.whole_stream(account.as_str()).await?;
        if events.is_empty() && anchored.is_none() {
            return Ok(None);
        }
        Ok(Some(check_stream(&events, anchored.as_ref())))
    }

    /// Verifies every account stream, and the latest anchor's own integrity.
    pub async fn verify_all(&self) -> Result<VerifyAllReport, AuditError> {
        self.verify_all_counting(&AtomicU64::new(0)).await
    }

    /// [`Self::verify_all`], adding the events it has read to `read` as it goes (a progress
    /// display reads it while the walk runs).
    pub async fn verify_all_counting(
        &self,
        read: &AtomicU64,
    ) -> Result<VerifyAllReport, AuditError> {
        let anchor = self.latest_anchor().await?;
        let mut anchored = match &anchor {
            Some(anchor) => self.anchored_heads(anchor.id).await?,
            None => BTreeMap::new(),
        };
        let anchor_intact = match &anchor {
            Some(anchor) => self.anchor_is_intact(anchor).await?,
            None => true,
        };

        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut checking: JoinSet<Vec<(String, StreamVerification)>> = JoinSet::new();
        let mut results: Vec<(String, StreamVerification)> = Vec::new();
        let mut batch: Batch = Vec::new();
        let mut batch_events = 0;
        let mut stream: Vec<RecordedEvent> = Vec::new();
        let mut events = 0u64;

        let mut next = Some(self.fetch(None));
        while let Some(fetching) = next.take() {
            let page = fetching
                .await
                .map_err(|e| AuditError::Log(PortError::new(e)))??;
            if page.len() == SCAN_PAGE as usize {
                next = page
                    .last()
                    .map(|e| self.fetch(Some((e.aggregate_id.clone(), e.sequence))));
            }
            events += page.len() as u64;
            read.fetch_add(page.len() as u64, Ordering::Relaxed);
            for event in page {
                if stream
                    .first()
                    .is_some_and(|first| first.aggregate_id != event.aggregate_id)
                {
                    let done = mem::take(&mut stream);
                    batch_events += done.len();
                    let account_id = done[0].aggregate_id.clone();
                    let head = anchored.remove(&account_id);
                    batch.push((account_id, done, head));
                }
                stream.push(event);
            }
            if batch_events >= TASK_EVENTS {
                checking.spawn_blocking(check_batch(mem::take(&mut batch)));
                batch_events = 0;
                while checking.len() > workers {
                    results.extend(joined(checking.join_next().await)?);
                }
            }
        }
        if let Some(first) = stream.first() {
            let account_id = first.aggregate_id.clone();
            let head = anchored.remove(&account_id);
            batch.push((account_id, stream, head));
        }
        // Anchored streams the walk never met: every one of their events is gone.
        batch.extend(
            anchored
                .into_iter()
                .map(|(account_id, head)| (account_id, Vec::new(), Some(head))),
        );
        checking.spawn_blocking(check_batch(batch));
        while let Some(joined_task) = checking.join_next().await {
            results.extend(joined(Some(joined_task))?);
        }

        results.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let streams = results.len() as u64;
        let broken = results
            .into_iter()
            .filter(|(_, v)| !v.ok)
            .map(|(account_id, verification)| BrokenStream {
                account_id,
                verification,
            })
            .collect();
        Ok(VerifyAllReport {
            streams,
            events,
            broken,
            anchor,
            anchor_intact,
        })
    }

    /// Reads the next page of the walk in the background.
    fn fetch(
        &self,
        after: Option<(String, u64)>,
    ) -> tokio::task::JoinHandle<Result<Vec<RecordedEvent>, AuditError>> {
        let log = self.log.clone();
        tokio::spawn(async move { log.streams(after, SCAN_PAGE).await.map_err(AuditError::Log) })
    }
}

/// Whole streams to check: account id, its events in sequence order, its anchored head.
type Batch = Vec<(String, Vec<RecordedEvent>, Option<AnchoredHead>)>;

fn check_batch(batch: Batch) -> impl FnOnce() -> Vec<(String, StreamVerification)> {
    move || {
        batch
            .into_iter()
            .map(|(account_id, events, anchored)| {
                (account_id, check_stream(&events, anchored.as_ref()))
            })
            .collect()
    }
}

fn joined<T>(result: Option<Result<T, tokio::task::JoinError>>) -> Result<T, AuditError> {
    match result {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(AuditError::Log(PortError::new(e))),
        None => Err(AuditError::Log(PortError::msg(
            "no verification task to join",
        ))),
    }
}
