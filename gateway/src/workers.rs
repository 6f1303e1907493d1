//! The background roles of issue 5 as the binary runs them: the relay (event log → bus), the
//! notifier (event log → planned deliveries → email and SMS; issue 11), and the password-age
//! reminder sweep; plus the bus behind `POST /internal/v1/accounts/{id}/notifications`.
//!
//! - `accountd serve`: [`connect_bus`], then `Application::build(config, Arc::new(BusNotifications(bus)))`,
//!   then [`attach`] adds the roles as the application's workers.
//! - `accountd relay`: [`run_relay`]. `accountd notify`: [`run_notify`] (planner, worker and
//!   sweep; any number of them). `accountd notify dead-letters`: [`print_dead_letters`].

use domain::PortError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::{CommandContext, CommandService, Store};
use domain::password::PasswordPolicy;
use domain::values::AccountId;
use domain::{AccountCommand, Sealed};
use projections::audit::Audit;
use projections::bus::{Bus, BusConfig, NotificationKind, NotificationRequest};
use projections::notifier::senders::Senders;
use projections::notifier::{Notifier, NotifierSettings, Planner, Unsealer};
use projections::relay::Relay;
use projections::ReadStore;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::app::{stopped, Application, Worker};
use crate::audit::StoreAuditLog;
use crate::config::Config;
use crate::wiring::StoreLog;

/// How often the reminder sweep looks for passwords that crossed the reminder age.
pub const REMINDER_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Accounts reminded per round of the sweep (the sweep loops until none is left).
const REMINDER_BATCH: i64 = 500;

/// The keyring as the notifier's unsealer: only the notifier opens sealed codes and tokens.
#[derive(Clone)]
pub struct KeyringUnsealer(pub Keyring);

impl Unsealer for KeyringUnsealer {
    fn open(&self, sealed: &Sealed) -> Option<String> {
        self.0.open(sealed)
    }
}

/// The bus as the gateway's way to publish subscribed messages and to check readiness.
#[derive(Clone, Debug)]
pub struct BusNotifications(pub Bus);

impl crate::http::Notifications for BusNotifications {
    fn publish<'a>(
        &'a self,
        account_id: &'a str,
        after_sequence: u64,
        kind: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> commands::ports::PortFuture<'a, ()> {
        Box::pin(async move {
            let kind = match kind {
                "arrears" => NotificationKind::Arrears,
                "expiry" => NotificationKind::Expiry,
                "event" => NotificationKind::Event,
                other => return Err(PortError::msg(format!("unknown notification kind {other}"))),
            };
            let request = NotificationRequest {
                kind,
                subject: subject.to_owned(),
                body: body.to_owned(),
            };
            self.0
                .publish_notification_request_after(account_id, &request, Some(after_sequence))
                .await
                .map(drop)
                .map_err(PortError::new)
        })
    }

    fn ping(&self) -> commands::ports::PortFuture<'_, ()> {
        Box::pin(async move { self.0.ping().await.map_err(PortError::new) })
    }
}

/// The configured bus: NATS when `NATS_URL` is set (streams created or updated), else the
/// in-process bus.
pub async fn connect_bus(config: &Config) -> anyhow::Result<Bus> {
    let bus = Bus::connect(BusConfig {
        url: config.nats_url.clone(),
        prefix: config.nats_stream_prefix.clone(),
        replicas: config.nats_replicas.max(1),
    })
    .await
    .with_context(|| match &config.nats_url {
        Some(url) => format!("connecting to NATS at {} (NATS_URL)", redacted_url(url)),
        None => "starting the in-process bus".to_owned(),
    })?;
    info!(bus = ?bus, "bus ready");
    Ok(bus)
}

/// A URL (or a comma-separated list of them) fit for messages: the user and password of each
/// are left out.
pub fn redacted_url(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let rest = match rest[..authority_end].rfind('@') {
                Some(at) => &rest[at + 1..],
                None => rest,
            };
            if scheme.is_empty() {
                rest.to_owned()
            } else {
                format!("{scheme}://{rest}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The senders SPEC §7 configures (SMTP, SMS gateway, or the file sink in the data folder).
pub fn senders(config: &Config) -> anyhow::Result<Senders> {
    Senders::configured(
        config.smtp_url.as_deref(),
        &config.smtp_from,
        config.sms_url.as_deref(),
        &config.data_dir,
    )
    .context("configuring the email and SMS senders")
}

pub fn notifier_settings(config: &Config) -> NotifierSettings {
    NotifierSettings {
        public_url: config.public_url.clone(),
        ..NotifierSettings::default()
    }
}

/// The relay as a worker: publishes the log after its checkpoint, woken by local commits.
pub fn relay_worker(store: Store, read: ReadStore, bus: Bus, commits: Arc<Notify>) -> Worker {
    Box::new(move |shutdown| {
        Box::pin(async move {
            Relay::new(Arc::new(StoreLog(store)), read, bus)
                .run(commits, stopped(shutdown))
                .await;
        })
    })
}

/// The notifier of one process: the planner (active in one process at a time) and a worker.
pub struct NotifierRole {
    pub store: Store,
    pub read: ReadStore,
    pub bus: Bus,
    pub unsealer: Arc<dyn Unsealer>,
    pub senders: Senders,
    pub settings: NotifierSettings,
    /// Local commits, to wake the planner.
    pub commits: Arc<Notify>,
}

impl NotifierRole {
    /// Runs the planner and the worker until `shutdown` resolves.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let store = self.read.notifier();
        let planned = Arc::new(Notify::new());
        let planner = Planner::new(
            Arc::new(StoreLog(self.store)),
            store.clone(),
            planned.clone(),
        );
        let worker = Arc::new(Notifier::new(
            store,
            self.bus,
            self.unsealer,
            self.senders,
            self.settings,
            planned,
        ));
        let commits = self.commits;
        let planning = planner.run(commits, stopped(shutdown.clone()));
        tokio::join!(planning, worker.run(stopped(shutdown)));
    }
}

/// The notifier as a worker.
pub fn notifier_worker(role: NotifierRole) -> Worker {
    Box::new(move |shutdown| Box::pin(role.run(shutdown)))
}

/// The reminder sweep as a worker: one sweep at start, then every `interval`.
pub fn reminder_worker(service: CommandService, read: ReadStore, interval: Duration) -> Worker {
    Box::new(move |shutdown| {
        Box::pin(async move {
            run_reminders(&service, &read, interval, stopped(shutdown)).await;
        })
    })
}

/// Sweeps every `interval` until `shutdown` resolves.
pub async fn run_reminders(
    service: &CommandService,
    read: &ReadStore,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match reminder_sweep(service, read, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => info!(accounts = n, "password reminders recorded"),
            Err(e) => warn!(error = %e, "password reminder sweep failed"),
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// One sweep at `now`: every account whose password crossed the reminder age and was not
/// reminded for it gets `SendPasswordExpiryReminder` (the aggregate records
/// `PasswordExpiryReminderSent` at most once per password). Returns how many were asked.
pub async fn reminder_sweep(
    service: &CommandService,
    read: &ReadStore,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let days = service.policy().reminder_after_days;
    let mut asked = 0;
    let mut seen = std::collections::HashSet::new();
    loop {
        let due = read
            .password_reminders_due(now, days, REMINDER_BATCH)
            .await
            .context("reading the accounts due a password reminder")?;
        // The read model catches up after the command; ids already asked are skipped.
        let fresh: Vec<String> = due
            .into_iter()
            .filter(|id| seen.insert(id.clone()))
            .collect();
        if fresh.is_empty() {
            return Ok(asked);
        }
        for id in fresh {
            let Ok(account_id) = AccountId::parse(&id) else {
                continue;
            };
            match service
                .execute(
                    &account_id,
                    AccountCommand::SendPasswordExpiryReminder,
                    &CommandContext::system(),
                )
                .await
            {
                Ok(_) => asked += 1,
                Err(e) => warn!(account_id = %id, error = %e, "password reminder failed"),
            }
        }
    }
}

/// The audit anchor job as a background role: every `every`, an anchor of every stream's head,
/// stored and published on `AUDIT_ANCHORS`.
pub fn anchor_worker(audit: Audit<StoreAuditLog>, bus: Bus, every: Duration) -> Worker {
    Box::new(move |shutdown| {
        Box::pin(async move {
            let sink = move |anchor: serde_json::Value| {
                let bus = bus.clone();
                async move {
                    bus.publish_anchor(&anchor)
                        .await
                        .map(drop)
                        .map_err(PortError::new)
                }
            };
            audit.run_anchors(every, &sink, stopped(shutdown)).await;
        })
    })
}

/// `ACCOUNTD_AUDIT_ANCHOR_INTERVAL` in seconds (default 60).
pub fn anchor_interval() -> Duration {
    std::env::var("ACCOUNTD_AUDIT_ANCHOR_INTERVAL")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(
            projections::audit::DEFAULT_ANCHOR_INTERVAL,
            Duration::from_secs,
        )
}

/// Adds the relay, the notifier, the reminder sweep and the audit anchors to an application
/// (`accountd serve`).
pub fn attach(app: Application, config: &Config, bus: Bus) -> anyhow::Result<Application> {
    let state = app.state().clone();
    let keyring = state.service.keyring().clone();
    let senders = senders(config)?;
    let bus_for_anchors = bus.clone();
    Ok(app
        .with_worker(relay_worker(
            state.store.clone(),
            state.read.clone(),
            bus.clone(),
            state.service.executor().commits(),
        ))
        .with_worker(notifier_worker(NotifierRole {
            store: state.store.clone(),
            read: state.read.clone(),
            bus,
            unsealer: Arc::new(KeyringUnsealer(keyring)),
            senders,
            settings: notifier_settings(config),
            commits: state.service.executor().commits(),
        }))
        .with_worker(reminder_worker(
            state.service.clone(),
            state.read.clone(),
            REMINDER_SWEEP_INTERVAL,
        ))
        .with_worker(anchor_worker(
            crate::audit::service(
                &state.store,
                state.read.clone(),
                PasswordPolicy::default().reminder_after_days,
            ),
            bus_for_anchors,
            anchor_interval(),
        )))
}

/// Opens the store and its read side, migrated.
async fn open(config: &Config) -> anyhow::Result<(Store, ReadStore)> {
    let store = config.open_store().await?;
    let read = config.open_read_store().await?;
    Ok((store, read))
}

/// `accountd relay`: the relay alone, until `shutdown`. Needs NATS (an in-process bus would
/// publish to nobody).
pub async fn run_relay(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.nats_url.is_some(),
        "`accountd relay` needs NATS_URL: the in-process bus lives inside `accountd serve`"
    );
    let (store, read) = open(config).await?;
    let bus = connect_bus(config).await?;
    Relay::new(Arc::new(StoreLog(store)), read, bus)
        .run(Arc::new(Notify::new()), shutdown)
        .await;
    Ok(())
}

/// `accountd notify`: the planner, a notification worker and the reminder sweep, until
/// `shutdown`. Needs NATS (subscribed messages come from it). Any number may run.
pub async fn run_notify(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.nats_url.is_some(),
        "`accountd notify` needs NATS_URL: the in-process bus lives inside `accountd serve`"
    );
    let (store, read) = open(config).await?;
    let keyring = config.keyring()?;
    let bus = connect_bus(config).await?;
    let service = CommandService::new(
        store.clone(),
        keyring.clone(),
        PasswordHasher::new(1, 1),
        PasswordPolicy::default(),
    );
    let role = NotifierRole {
        store,
        read: read.clone(),
        bus,
        unsealer: Arc::new(KeyringUnsealer(keyring)),
        senders: senders(config)?,
        settings: notifier_settings(config),
        commits: Arc::new(Notify::new()),
    };
    let (stop, stopping) = watch::channel(false);
    let notifier_task = tokio::spawn(role.run(stopping.clone()));
    let sweep = run_reminders(&service, &read, REMINDER_SWEEP_INTERVAL, stopped(stopping));
    tokio::select! {
        () = shutdown => {}
        () = sweep => {}
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), notifier_task).await;
    Ok(())
}

/// `accountd notify dead-letters`: one line per dead letter (tab-separated: source, channel,
/// recipient, template, attempts, reason), then their count on stderr.
pub async fn print_dead_letters(read: &ReadStore) -> anyhow::Result<()> {
    let dead = read
        .notifier()
        .dead_letters()
        .await
        .context("reading the dead letters")?;
    for d in &dead {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            d.source_id,
            d.channel,
            d.recipient,
            d.template,
            d.attempts,
            d.last_error.as_deref().unwrap_or("")
        );
    }
    eprintln!("{} dead letter(s)", dead.len());
    Ok(())
}

/// The data folder's outbox (the file sink), for operators and tests.
pub fn outbox_path(data_dir: &Path) -> PathBuf {
    data_dir.join("outbox.ndjson")
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn redacted_urls_keep_the_address_and_drop_credentials() {
        assert_eq!(
            redacted_url("nats://user:secret@nats-1:4222, tls://token@nats-2:4222/x"),
            "nats://nats-1:4222,tls://nats-2:4222/x"
        );
        assert_eq!(
            redacted_url("nats://127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(redacted_url("127.0.0.1:4222"), "127.0.0.1:4222");
    }
}
