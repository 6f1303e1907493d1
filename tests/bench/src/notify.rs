//! `accountd-bench notify`: messages/s from a backlog of committed sign-ups to the file sink,
//! through the relay and the notifier roles as `accountd` runs them (`gateway::workers`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::{CommandContext, CommandService};
use domain::password::PasswordPolicy;
use domain::values::{AccountId, Email};
use domain::{AccountCommand, PasswordHash};
use gateway::app::stopped;
use gateway::wiring::StoreLog;
use gateway::workers::{KeyringUnsealer, NotifierRole};
use projections::bus::{Bus, BusConfig};
use projections::notifier::senders::{OutboxLine, Senders};
use projections::notifier::NotifierSettings;
use projections::relay::Relay;
use projections::ReadStore;
use testkit::Scratch;
use tokio::sync::{watch, Notify};

/// What `accountd-bench notify` measures with.
#[derive(Debug, Clone)]
pub struct NotifyBench {
    /// Sign-ups, each of which sends one email (its verification code).
    pub accounts: usize,
    /// Concurrent writers of the backlog.
    pub writers: usize,
    /// A PostgreSQL URL through which a scratch database is created (and dropped); `None` uses
    /// a scratch SQLite file.
    pub admin_url: Option<String>,
    /// NATS; `None` uses the in-process bus.
    pub nats_url: Option<String>,
}

/// What one run measured.
#[derive(Debug, Clone)]
struct NotifyReport {
    pub messages: usize,
    pub seconds: f64,
}

impl NotifyReport {
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.seconds.max(1e-9)
    }
}

/// `accountd-bench notify`: messages/s from a backlog of committed sign-ups to the file sink,
/// through the relay and the notifier roles, with 1 notifier (the baseline) and then with 2,
/// each on a scratch database and stream prefix; prints both and their ratio.
pub async fn bench_notify(options: NotifyBench) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for notifiers in [1, 2] {
        let report = notify_run(&options, notifiers).await?;
        println!(
            "notify bench ({} store, {} bus): {} notifier(s): {} messages in {:.2}s = {:.0} messages/s",
            if options.admin_url.is_some() { "PostgreSQL" } else { "SQLite" },
            if options.nats_url.is_some() { "NATS" } else { "in-process" },
            notifiers,
            report.messages,
            report.seconds,
            report.per_second(),
        );
        reports.push(report);
    }
    if let [one, two] = reports.as_slice() {
        println!(
            "notify bench: 2 notifiers / 1 notifier = {:.2}x",
            two.per_second() / one.per_second().max(1e-9)
        );
    }
    Ok(())
}

/// One run: the backlog is committed first, then the relay and `notifiers` roles start and the
/// clock runs until the file sink holds every message.
async fn notify_run(options: &NotifyBench, notifiers: usize) -> anyhow::Result<NotifyReport> {
    let db = match &options.admin_url {
        Some(admin) => Scratch::postgres(admin).await?,
        None => Scratch::sqlite().await?,
    };
    let read = ReadStore::open(db.location()).await?;
    let prefix = format!("bench{}_", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let bus = Bus::connect(BusConfig {
        url: options.nats_url.clone(),
        prefix,
        replicas: 1,
    })
    .await?;
    let key = commands::secrets::decode_key(&commands::secrets::generate_key())?;
    let keyring = Keyring::new(key, []);
    let service = CommandService::new(
        db.store.clone(),
        keyring.clone(),
        PasswordHasher::new(1, 1),
        PasswordPolicy::default(),
    );
    let outbox_dir = std::env::temp_dir().join(format!("accountd_bench_{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&outbox_dir)?;
    let expected = write_backlog(&service, options.accounts, options.writers).await?;

    let (stop, stopping) = watch::channel(false);
    let started = Utc::now();
    let mut tasks = tokio::task::JoinSet::new();
    let relay = Relay::new(
        Arc::new(StoreLog(db.store.clone())),
        read.clone(),
        bus.clone(),
    );
    tasks.spawn({
        let stopping = stopping.clone();
        async move { relay.run(Arc::new(Notify::new()), stopped(stopping)).await }
    });
    for _ in 0..notifiers {
        let role = NotifierRole {
            store: db.store.clone(),
            read: read.clone(),
            bus: bus.clone(),
            unsealer: Arc::new(KeyringUnsealer(keyring.clone())),
            senders: Senders::file(&outbox_dir),
            settings: NotifierSettings::default(),
            commits: Arc::new(Notify::new()),
        };
        tasks.spawn(role.run(stopping.clone()));
    }
    let outbox = outbox_dir.join("outbox.ndjson");
    let sent = wait_for_lines(&outbox, expected, Duration::from_secs(600)).await?;
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    let last_sent = sent.iter().map(|(_, at)| *at).max().unwrap_or(started);
    let _ = bus.delete_streams().await;
    let _ = std::fs::remove_dir_all(&outbox_dir);
    Ok(NotifyReport {
        messages: sent.len(),
        seconds: (last_sent - started).num_microseconds().unwrap_or_default() as f64 / 1e6,
    })
}

/// Commits `accounts` email sign-ups with `writers` concurrent writers; returns how many.
async fn write_backlog(
    service: &CommandService,
    accounts: usize,
    writers: usize,
) -> anyhow::Result<usize> {
    let writers = writers.max(1);
    let per_writer = accounts.div_ceil(writers);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..writers {
        let service = service.clone();
        tasks.spawn(async move {
            for i in 0..per_writer {
                let number = service.store().next_account_number().await?;
                let account_id = AccountId::from_number(number)?;
                service
                    .execute(
                        &account_id,
                        AccountCommand::RegisterWithEmail {
                            account_id: account_id.clone(),
                            login_email: Email::parse(&format!("bench.{writer}.{i}@example.com"))?,
                            // No Argon2 work: this measures the way to the sink, not hashing.
                            password_hash: PasswordHash::from_phc("$argon2id$v=19$bench"),
                            code_id: format!("bench-{number}"),
                        },
                        &CommandContext::system(),
                    )
                    .await?;
            }
            Ok::<_, anyhow::Error>(per_writer)
        });
    }
    let mut written = 0;
    while let Some(done) = tasks.join_next().await {
        written += done??;
    }
    Ok(written)
}

/// Waits until the outbox holds `count` lines; returns each line's `to` and `sent_at`.
async fn wait_for_lines(
    path: &Path,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<(String, DateTime<Utc>)>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let lines = OutboxLine::read_all(path)?;
        if lines.len() >= count || tokio::time::Instant::now() >= deadline {
            return Ok(lines.into_iter().map(|l| (l.to, l.sent_at)).collect());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
