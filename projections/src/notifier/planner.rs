//! The planner (issue 11): decides what to send, to which address, in commit order from the
//! gap-free event log, never from bus redeliveries.
//!
//! Like the projector, it reads the log after its own checkpoint and, in ONE transaction per
//! batch, folds each account's contact values (`notifier_contacts`), writes the delivery rows
//! its events ask for (`pending`, due at once) and moves its checkpoint. A crash before the
//! commit plans the batch again; after it, nothing is planned twice. One planner is active at a
//! time (a PostgreSQL advisory lock; its checkpoint is also compared-and-set).
//!
//! Subscribed messages (`NOTIFICATION_REQUESTS`) are kept by the workers in
//! `notification_requests` and resolved here, in the same transactions: a request is planned
//! once the fold of its account has reached the sequence it was made after (or, without one,
//! once the account is known), to the verified contact values of that point. A request the
//! planner cannot resolve although it read the log to its head *after* loading the request, and
//! whose events the store does not hold either, can never be resolved (its account does not
//! exist, or never reached that sequence): it becomes a dead letter with that reason. No timer
//! decides.

use crate::batches::{run_batches, Pacing};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use domain::stored::{Checkpoint, RecordedEvent};
use domain::values::Mobile;
use domain::{CodePurpose, Sealed};
use serde::Deserialize;
use tokio::sync::{watch, Notify};
use tracing::{debug, info, warn};

use super::plan::{
    plan_account_event, plan_challenge, plan_request, Contacts, NotifierEvent, Plan,
};
use super::store::{now_ms, DeadPlan, NotifyStore, PendingRequest, PlannedBatch};
use super::NotifyError;
use crate::bus::NotificationRequest;
use crate::log::EventLog;

/// The planner's checkpoint row and lock name.
pub const PLANNER: &str = "notifier";

/// How often an idle planner looks for events written by other processes.
const POLL: Duration = Duration::from_millis(100);

/// Waiting requests looked at per batch.
const REQUESTS_PER_BATCH: i64 = 1000;

pub struct Planner<L> {
    log: Arc<L>,
    store: Arc<dyn NotifyStore>,
    batch_size: u32,
    /// Woken after a batch planned rows (the workers of this process).
    planned: Arc<Notify>,
    progress: watch::Sender<Checkpoint>,
}

impl<L: EventLog> Planner<L> {
    pub fn new(log: Arc<L>, store: Arc<dyn NotifyStore>, planned: Arc<Notify>) -> Self {
        Self {
            log,
            store,
            batch_size: 1000,
            planned,
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

    /// Plans one batch. Returns how many events it read (0: caught up, and every request
    /// loaded before the read resolved).
    pub async fn step(&self) -> Result<usize, NotifyError> {
        // Requests first: if the log then reads empty, every event committed before these
        // requests arrived has been folded, and what cannot be resolved now never will.
        let requests = self.store.pending_requests(REQUESTS_PER_BATCH).await?;
        let from = self.store.checkpoint(PLANNER).await?;
        let events = self
            .log
            .read_after(from, self.batch_size)
            .await
            .map_err(NotifyError::Log)?;
        let drained = events.is_empty();
        if drained && requests.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<String> = events
            .iter()
            .filter(|e| e.aggregate_type == ACCOUNT)
            .map(|e| e.aggregate_id.clone())
            .chain(requests.iter().map(|r| r.account_id.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        ids.sort();
        let mut folds = self.store.contacts(&ids).await?;
        let mut batch = Batch::default();
        for event in &events {
            batch.plan_event(event, &mut folds);
        }
        for request in &requests {
            if batch.resolve(request, &folds) || !drained {
                continue;
            }
            // Read to the head after it was loaded and still not reached: unless the store holds
            // the events it waits for (committed, not yet readable in order), it never will be.
            let needed = request.after_sequence.unwrap_or(1).max(1);
            if self.store.stored_sequence(&request.account_id).await? < needed {
                batch.give_up(request, folds.get(&request.account_id));
            }
        }
        let to = events.last().map_or(from, |e| e.checkpoint);
        let planned = batch.rows.len();
        let resolved = batch.resolved.len();
        let dead = batch.dead.len();
        let written = PlannedBatch {
            from,
            to,
            contacts: batch
                .changed
                .iter()
                .filter_map(|id| folds.get(id).map(|f| (id.clone(), f.clone())))
                .collect(),
            deliveries: batch.rows,
            dead: batch.dead,
            resolved_requests: batch.resolved,
            now_ms: now_ms(),
        };
        if !self.store.commit_plan(PLANNER, &written).await? {
            return Err(NotifyError::CheckpointMoved);
        }
        self.progress.send_replace(to);
        if planned > 0 {
            self.planned.notify_waiters();
        }
        metrics::counter!("accountd_notifications_planned_total").increment(planned as u64);
        if dead > 0 {
            metrics::counter!("accountd_notifications_dead_letter_total", "channel" => "none")
                .increment(dead as u64);
        }
        if let Some(newest) = events.last() {
            let lag = (chrono::Utc::now() - newest.recorded_at)
                .num_milliseconds()
                .max(0);
            metrics::gauge!("accountd_notifier_planner_lag_seconds").set(lag as f64 / 1000.0);
        }
        debug!(events = events.len(), planned, resolved, dead, "planned");
        Ok(events.len())
    }

    /// Steps until the log and the waiting requests are done.
    pub async fn catch_up(&self) -> Result<(), NotifyError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    /// Runs until `shutdown` resolves, as the one active planner: woken by `commits` (local
    /// writes) and polling for the rest. A failed batch is retried after a pause; nothing is
    /// skipped.
    pub async fn run(&self, commits: Arc<Notify>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let lock_name = format!("accountd.{PLANNER}.planner");
        let _lock = tokio::select! {
            lock = self.store.exclusive(&lock_name) => lock,
            () = &mut shutdown => return,
        };
        info!("notification planner active");
        let pacing = Pacing {
            poll: POLL,
            full: self.batch_size as usize,
        };
        run_batches("planner", &commits, pacing, shutdown, || self.step()).await;
    }
}

const ACCOUNT: &str = "Account";
const CHALLENGE: &str = "Challenge";
const CHALLENGE_ISSUED: &str = "ChallengeIssued";

/// What one batch plans, before it is written.
#[derive(Default)]
struct Batch {
    rows: Vec<(String, super::plan::Planned)>,
    keys: HashSet<(String, &'static str, String)>,
    dead: Vec<DeadPlan>,
    resolved: Vec<String>,
    /// Accounts whose fold moved.
    changed: HashSet<String>,
}

impl Batch {
    fn add(&mut self, plan: Plan) {
        for planned in plan.messages {
            let key = (
                plan.source_id.clone(),
                planned.channel.as_str(),
                planned.recipient.clone(),
            );
            if self.keys.insert(key) {
                self.rows.push((plan.source_id.clone(), planned));
            }
        }
    }

    fn plan_event(&mut self, event: &RecordedEvent, folds: &mut HashMap<String, Contacts>) {
        let source_id = format!("{}:{}", event.aggregate_id, event.sequence);
        match event.aggregate_type.as_str() {
            ACCOUNT => {
                let fold = folds.entry(event.aggregate_id.clone()).or_default();
                if event.sequence <= fold.last_sequence {
                    return; // folded before (a planner re-run over the same events)
                }
                self.changed.insert(event.aggregate_id.clone());
                match NotifierEvent::parse(&event.event_type, event.payload.clone()) {
                    Ok(parsed) => {
                        let plan =
                            plan_account_event(&event.aggregate_id, event.sequence, &parsed, fold);
                        self.add(plan);
                    }
                    Err(e) => {
                        // Nothing can be sent for it; the fold still moves past it.
                        fold.last_sequence = event.sequence;
                        warn!(source_id, error = %e, "an event the notifier cannot read");
                        self.dead.push(DeadPlan {
                            source_id,
                            template: event.event_type.clone(),
                            reason: format!("the event cannot be read: {e}"),
                        });
                    }
                }
            }
            CHALLENGE if event.event_type == CHALLENGE_ISSUED => {
                #[derive(Deserialize)]
                struct Issued {
                    mobile: Mobile,
                    purpose: CodePurpose,
                    sealed_code: Sealed,
                    expires_at: chrono::DateTime<chrono::Utc>,
                }
                match serde_json::from_value::<Issued>(event.payload.clone()) {
                    Ok(i) => self.add(plan_challenge(
                        &event.aggregate_id,
                        &i.mobile,
                        i.purpose,
                        &i.sealed_code,
                        i.expires_at,
                    )),
                    Err(e) => self.dead.push(DeadPlan {
                        source_id: format!("challenge:{}", event.aggregate_id),
                        template: "code".to_owned(),
                        reason: format!("the event cannot be read: {e}"),
                    }),
                }
            }
            _ => {}
        }
    }

    /// Plans `request` if its account's fold has reached it; says whether it did.
    fn resolve(&mut self, request: &PendingRequest, folds: &HashMap<String, Contacts>) -> bool {
        let fold = folds.get(&request.account_id);
        let reached = fold.is_some_and(|f| {
            f.last_sequence > 0 && request.after_sequence.is_none_or(|a| f.last_sequence >= a)
        });
        if !reached {
            return false; // waits for the planner
        }
        let plan = serde_json::from_value::<NotificationRequest>(request.params.clone())
            .map(|r| plan_request(request.source_id.clone(), &r, fold.unwrap_or(&EMPTY)));
        match plan {
            Ok(plan) if plan.messages.is_empty() => {
                self.dead_letter(request, "no verified contact value".to_owned())
            }
            Ok(plan) => {
                self.add(plan);
                self.resolved.push(request.source_id.clone());
            }
            Err(e) => self.dead_letter(request, format!("malformed request: {e}")),
        }
        true
    }

    /// Gives up on a request whose account never reaches it.
    fn give_up(&mut self, request: &PendingRequest, fold: Option<&Contacts>) {
        let reason = match (fold, request.after_sequence) {
            (Some(f), Some(after)) if f.last_sequence > 0 => format!(
                "the account's events end at sequence {} before {after}",
                f.last_sequence
            ),
            _ => "unknown account".to_owned(),
        };
        self.dead_letter(request, reason);
    }

    fn dead_letter(&mut self, request: &PendingRequest, reason: String) {
        self.dead.push(DeadPlan {
            source_id: request.source_id.clone(),
            template: "subscribed".to_owned(),
            reason,
        });
        self.resolved.push(request.source_id.clone());
    }
}

static EMPTY: Contacts = Contacts {
    last_sequence: 0,
    mobile: None,
    email: None,
};
