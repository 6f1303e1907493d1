//! Anchors (SPEC §5): at an interval, every account stream's head (account, sequence, chain
//! hash) is folded into one root hash, stored (migration 1003) and published (stream
//! `AUDIT_ANCHORS`, subject `audit.anchors`). A per-stream chain cannot reveal that its newest
//! events were deleted; the anchor can: verification reports the first missing sequence.
//!
//! # The anchored heads
//! An anchor covers every account stream ever anchored. A stream's anchored head only moves
//! forward, and only along its own chain: a new head is taken when its sequence is higher and
//! the stream still holds, at the previously anchored sequence, the previously anchored chain
//! hash. A stream whose head went back (newest events deleted) or whose anchored event was
//! rewritten keeps its old anchored head, so later anchors never launder the tampering;
//! verification keeps reporting it. Only the heads that moved are stored with each anchor; the
//! heads of anchor N are, per account, its row with the greatest anchor id at or below N.
//!
//! # Root hash
//! `root_hash` = lowercase hex SHA-256 of the canonical JSON (keys sorted, no whitespace; see
//! `domain::chain::canonical_json`) of the array of every anchored head sorted by account id
//! (byte order): `[{"account_id":"100000000001","chain_hash":"<64 hex>","sequence":7},…]`.
//! An empty store's root is the SHA-256 of `[]`.
//!
//! # Publishing
//! The published message is `{"anchor_id", "created_at", "root_hash", "streams", "events"}`
//! (`events` = the sum of the anchored sequences): small whatever the number of accounts. Anyone
//! holding a published root can recompute it from the store's heads and so detect a rewrite of
//! the anchor tables themselves. A publish that fails is logged and not retried: the next
//! anchor covers everything the missed one did, since anchored heads only move forward.

use domain::PortError;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::chain::canonical_json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, instrument, warn};

use super::{Audit, AuditError, AuditLog, StreamHead};

/// How often the anchor job runs unless configured otherwise.
pub const DEFAULT_ANCHOR_INTERVAL: Duration = Duration::from_secs(60);

/// Serialises anchor creation within a process (the embedded store has one process; on
/// PostgreSQL an advisory lock serialises processes too).
static ANCHORING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One stored anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub root_hash: String,
    /// How many streams the root covers.
    pub streams: u64,
    /// The sum of the anchored sequences: how many events the root covers.
    pub events: u64,
}

impl Anchor {
    /// The message published on `audit.anchors`.
    pub fn message(&self) -> Value {
        json!({
            "anchor_id": self.id,
            "created_at": self.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "root_hash": self.root_hash,
            "streams": self.streams,
            "events": self.events,
        })
    }
}

/// A stream's head as the anchors hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchoredHead {
    /// The anchor that last moved it.
    pub anchor_id: i64,
    pub sequence: u64,
    pub chain_hash: String,
}

/// Where anchors are published (the bus). A closure `Fn(Value) -> impl Future<Output =
/// Result<(), PortError>>` is one.
pub trait AnchorSink: Send + Sync {
    fn publish_anchor(&self, anchor: &Value) -> impl Future<Output = Result<(), PortError>> + Send;
}

impl<F, Fut> AnchorSink for F
where
    F: Fn(Value) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), PortError>> + Send,
{
    fn publish_anchor(&self, anchor: &Value) -> impl Future<Output = Result<(), PortError>> + Send {
        self(anchor.clone())
    }
}

/// The root hash over `heads` (account id, sequence, chain hash), in any order (see the module
/// documentation for the exact construction).
pub fn root_hash<'a>(heads: impl IntoIterator<Item = (&'a str, u64, &'a str)>) -> String {
    let mut heads: Vec<_> = heads.into_iter().collect();
    heads.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    // Hashed element by element: the same bytes as the canonical JSON of the whole array,
    // without building it.
    let mut hasher = Sha256::new();
    hasher.update(b"[");
    for (i, (account_id, sequence, chain_hash)) in heads.into_iter().enumerate() {
        if i > 0 {
            hasher.update(b",");
        }
        let head = json!({
            "account_id": account_id,
            "chain_hash": chain_hash,
            "sequence": sequence,
        });
        hasher.update(canonical_json(&head).as_bytes());
    }
    hasher.update(b"]");
    hex::encode(hasher.finalize())
}

/// What a new anchor will hold.
struct Plan {
    /// The heads that moved (new streams, and streams extended along their anchored chain).
    moved: Vec<StreamHead>,
    root_hash: String,
    streams: u64,
    events: u64,
}

impl<L: AuditLog> Audit<L> {
    /// Creates an anchor of every account stream's head at `now`, stores it and returns it for
    /// publishing.
    #[instrument(skip_all)]
    pub async fn create_anchor(&self, now: DateTime<Utc>) -> Result<Anchor, AuditError> {
        let _turn = ANCHORING.lock().await;
        let mut tx = self.db.anchors.begin().await?;
        let plan = self.plan(&tx.latest_heads().await?).await?;
        let mut anchor = Anchor {
            id: 0,
            created_at: now,
            root_hash: plan.root_hash,
            streams: plan.streams,
            events: plan.events,
        };
        anchor.id = tx.store(&anchor, &plan.moved).await?;
        debug!(
            anchor = anchor.id,
            streams = anchor.streams,
            "anchor created"
        );
        Ok(anchor)
    }

    /// Reads every stream's head and decides which anchored heads move (module docs).
    async fn plan(&self, previous: &BTreeMap<String, AnchoredHead>) -> Result<Plan, AuditError> {
        let current = self.log.heads().await.map_err(AuditError::Log)?;
        let mut moved = Vec::new();
        let mut extended = Vec::new();
        for head in current {
            match previous.get(&head.account_id) {
                None => moved.push(head),
                Some(anchored)
                    if head.sequence == anchored.sequence
                        && head.chain_hash == anchored.chain_hash => {}
                Some(anchored) if head.sequence > anchored.sequence => extended.push(head),
                Some(anchored) => warn!(
                    account_id = %head.account_id,
                    anchored = anchored.sequence,
                    head = head.sequence,
                    "an account stream's head is behind or differs from its anchored head; \
                     it stays anchored where it was"
                ),
            }
        }
        if !extended.is_empty() {
            let keys: Vec<(String, u64)> = extended
                .iter()
                .filter_map(|h| {
                    let anchored = previous.get(&h.account_id)?;
                    Some((h.account_id.clone(), anchored.sequence))
                })
                .collect();
            let stored = self
                .log
                .chain_hashes_at(&keys)
                .await
                .map_err(AuditError::Log)?;
            for (head, stored) in extended.into_iter().zip(stored) {
                let anchored = previous.get(&head.account_id);
                if stored.is_some() && stored.as_deref() == anchored.map(|a| a.chain_hash.as_str())
                {
                    moved.push(head);
                } else {
                    warn!(
                        account_id = %head.account_id,
                        anchored = anchored.map_or(0, |a| a.sequence),
                        "an account stream no longer holds its anchored event; it stays \
                         anchored where it was"
                    );
                }
            }
        }
        let mut all: BTreeMap<&str, (u64, &str)> = previous
            .iter()
            .map(|(id, a)| (id.as_str(), (a.sequence, a.chain_hash.as_str())))
            .collect();
        for head in &moved {
            all.insert(&head.account_id, (head.sequence, &head.chain_hash));
        }
        Ok(Plan {
            root_hash: root_hash(all.iter().map(|(id, (s, h))| (*id, *s, *h))),
            streams: all.len() as u64,
            events: all.values().map(|(s, _)| s).sum(),
            moved,
        })
    }

    /// The newest anchor, if any.
    pub async fn latest_anchor(&self) -> Result<Option<Anchor>, AuditError> {
        Ok(self.db.anchors.latest().await?)
    }

    /// Whether the heads stored for `anchor` still fold into its root hash (a rewrite of the
    /// anchor tables that did not also rewrite the published root shows here).
    pub async fn anchor_is_intact(&self, anchor: &Anchor) -> Result<bool, AuditError> {
        let heads = self.anchored_heads(anchor.id).await?;
        let root = root_hash(
            heads
                .iter()
                .map(|(id, h)| (id.as_str(), h.sequence, h.chain_hash.as_str())),
        );
        let events: u64 = heads.values().map(|h| h.sequence).sum();
        Ok(root == anchor.root_hash
            && heads.len() as u64 == anchor.streams
            && events == anchor.events)
    }

    /// The heads of anchor `up_to` (every account's latest row at or below it), by account.
    pub async fn anchored_heads(
        &self,
        up_to: i64,
    ) -> Result<BTreeMap<String, AnchoredHead>, AuditError> {
        Ok(self.db.anchors.heads(up_to).await?)
    }

    /// The latest anchored head of `account_id`.
    pub async fn anchored_head(
        &self,
        account_id: &str,
    ) -> Result<Option<AnchoredHead>, AuditError> {
        Ok(self.db.anchors.head(account_id).await?)
    }

    /// Creates an anchor now and publishes it. The anchor is stored even when publishing fails
    /// (the failure is logged; the next anchor covers this one).
    pub async fn anchor_and_publish(&self, sink: &impl AnchorSink) -> Result<Anchor, AuditError> {
        let anchor = self.create_anchor(Utc::now()).await?;
        if let Err(error) = sink.publish_anchor(&anchor.message()).await {
            warn!(anchor = anchor.id, %error, "could not publish an audit anchor");
        }
        Ok(anchor)
    }

    /// The anchor job: an anchor every `every` (the first at once) until `shutdown` resolves.
    /// A failed anchor is logged and the job goes on.
    pub async fn run_anchors(
        &self,
        every: Duration,
        sink: &impl AnchorSink,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        info!(every = ?every, "audit anchors running");
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            match self.anchor_and_publish(sink).await {
                Ok(anchor) => debug!(anchor = anchor.id, root = %anchor.root_hash, "anchored"),
                Err(error) => warn!(%error, "could not create an audit anchor"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const H2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn the_root_hash_is_the_sha256_of_the_canonical_sorted_list_of_heads() {
        let expected = {
            let text = format!(
                r#"[{{"account_id":"100000000001","chain_hash":"{H1}","sequence":3}},{{"account_id":"100000000002","chain_hash":"{H2}","sequence":12}}]"#
            );
            hex::encode(Sha256::digest(text.as_bytes()))
        };
        assert_eq!(
            root_hash([("100000000002", 12, H2), ("100000000001", 3, H1)]),
            expected
        );
    }

    #[test]
    fn the_root_hash_of_no_streams_is_the_hash_of_an_empty_list() {
        assert_eq!(
            root_hash(std::iter::empty()),
            hex::encode(Sha256::digest(b"[]"))
        );
    }

    #[test]
    fn any_change_to_a_head_changes_the_root() {
        let base = root_hash([("100000000001", 3, H1), ("100000000002", 12, H2)]);
        assert_ne!(
            base,
            root_hash([("100000000001", 2, H1), ("100000000002", 12, H2)])
        );
        assert_ne!(
            base,
            root_hash([("100000000001", 3, H2), ("100000000002", 12, H2)])
        );
        assert_ne!(base, root_hash([("100000000001", 3, H1)]));
    }
}
