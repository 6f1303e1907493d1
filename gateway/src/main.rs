//! The `accountd` binary: one process with every role (`serve`, the default), or one role per
//! process, plus operations (`migrate`, `project rebuild`, `audit`, `outbox`). The benchmarks are
//! `accountd-bench` (`tests/bench`), not part of this binary.
#![forbid(unsafe_code)]

use gateway::progress::with_progress;
use gateway::{config, wiring, workers};

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: allocation and freeing were the largest single item in the
/// profiles of the request path (docs/benchmarks.md, 2026-12-06).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The environment variables, for `--help` (SPEC §7; the binary reads no configuration file).
const ENVIRONMENT: &str = "\
Environment:
  ACCOUNTD_BIND                  HTTP listen address [default: 127.0.0.1:8080]
  ACCOUNTD_DATA_DIR              embedded store, key file and file sink [default: ./data]
  DATABASE_URL                   postgres://… (PostgreSQL) or sqlite://PATH (the embedded store
                                 in that file); unset: accountd.db in the data folder
  NATS_URL                       NATS JetStream; unset: the in-process bus
  ACCOUNTD_NATS_STREAM_PREFIX    prefix of stream names and subjects [default: empty]
  ACCOUNTD_NATS_REPLICAS         replicas of the streams [default: 1]
  ACCOUNTD_PUBLIC_URL            base of links in messages [default: http://127.0.0.1:8080]
  ACCOUNTD_SMTP_URL              smtp://host:port or smtps://user:pass@host:port; unset: file sink
  ACCOUNTD_SMTP_FROM             sender address [default: no-reply@accountd.local]
  ACCOUNTD_SMS_URL               HTTP endpoint for SMS; unset: file sink
  ACCOUNTD_SERVICE_TOKENS        internal callers, role:token pairs separated by commas
  ACCOUNTD_SECRET_KEY            base64 of 32 bytes; required with PostgreSQL, generated into the
                                 data folder otherwise
  ACCOUNTD_PREVIOUS_SECRET_KEYS  older keys still accepted for opening sealed values
  ACCOUNTD_IP_RATE_LIMIT         requests a minute per client IP and public route; 0 is off [default: 300]
  ACCOUNTD_TRUSTED_PROXY_HEADER  header holding the client IP behind a proxy
  ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS
                                 notify a sign-in from a client unseen in this many days; 0 is
                                 off [default: 30; 0 without DATABASE_URL]
  ACCOUNTD_AUDIT_ANCHOR_INTERVAL seconds between audit anchors [default: 60]
  ACCOUNTD_LOG_FORMAT            text or json [default: text; colours only on a terminal]
  RUST_LOG                       log filter [default: info]";

#[derive(Parser)]
#[command(
    name = "accountd",
    version,
    about = "The account service of a cloud provider",
    after_help = ENVIRONMENT
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process (the default).
    #[command(after_help = ENVIRONMENT)]
    Serve,
    /// Run only the HTTP gateway (scale out beside `project`, `relay`, `notify`).
    #[command(after_help = ENVIRONMENT)]
    Gateway,
    /// Run only the relay from the event store to NATS (needs NATS_URL).
    #[command(after_help = ENVIRONMENT)]
    Relay,
    /// Run only the notifier (planner and worker; any number of them) and the password-age
    /// reminder sweep (needs NATS_URL); or list the dead letters.
    #[command(after_help = ENVIRONMENT)]
    Notify {
        #[command(subcommand)]
        action: Option<NotifyAction>,
    },
    /// Create or update the store's schema, then exit.
    #[command(after_help = ENVIRONMENT)]
    Migrate,
    /// Run the projector (the read models), or rebuild a projection from the log.
    #[command(after_help = ENVIRONMENT)]
    Project {
        #[command(subcommand)]
        action: Option<ProjectAction>,
    },
    /// Auditors' tools: history, state at an instant, chain verification, export.
    Audit {
        #[command(subcommand)]
        command: gateway::audit::AuditCommand,
    },
    /// Read the development outbox (`outbox.ndjson` in the data folder): wait for a code or link.
    Outbox {
        #[command(subcommand)]
        command: gateway::outbox::OutboxCommand,
    },
}

#[derive(Subcommand)]
enum NotifyAction {
    /// List the messages given up on (key, template, attempts, reason), oldest first.
    DeadLetters,
}

#[derive(Subcommand)]
enum ProjectAction {
    /// Rebuild read models from the event log and swap them in.
    Rebuild {
        /// The projection to rebuild (only `profiles` exists).
        #[arg(long, default_value = "profiles")]
        projection: String,
    },
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first polled, so that a SIGTERM during start-up stops the process gracefully
/// instead of killing it. Only the long-running commands call it (one-shot work such as
/// `audit verify` keeps the default: a signal ends it).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut terminate, mut interrupt)) = handlers {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// How log lines are written: `ACCOUNTD_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    fn from_env() -> anyhow::Result<Self> {
        match std::env::var("ACCOUNTD_LOG_FORMAT")
            .ok()
            .as_deref()
            .map(str::trim)
        {
            None | Some("" | "text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => anyhow::bail!("ACCOUNTD_LOG_FORMAT must be text or json, not {other:?}"),
        }
    }
}

/// Logs go to stderr, as text (colours only when stderr is a terminal and `NO_COLOR` is
/// unset) or as one JSON object a line.
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init();
        }
    }
}

/// Which store and bus a process uses, for its start line (no credentials).
fn dependencies(config: &config::Config) -> (&'static str, &'static str) {
    let store = match config.database {
        config::Database::Postgres => "postgresql",
        config::Database::Embedded | config::Database::SqliteFile(_) => "sqlite",
    };
    let bus = if config.nats_url.is_some() {
        "nats"
    } else {
        "in-process"
    };
    (store, bus)
}

/// Opens the store and the read store on it, both migrated.
async fn open(
    config: &config::Config,
) -> anyhow::Result<(commands::Store, projections::ReadStore)> {
    let store = config.open_store().await?;
    let read = config.open_read_store().await?;
    Ok((store, read))
}

/// Errors end the process with ONE line on stderr, the whole chain of causes
/// (`accountd: connecting to PostgreSQL at 127.0.0.1:5432/postgres: … Connection refused`),
/// and exit status 2 (1 is `audit verify` finding a break).
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("accountd: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_logging(LogFormat::from_env()?);
    let config = config::Config::from_env()?;
    let (store_kind, bus_kind) = dependencies(&config);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let shutdown = shutdown_signal();
            let app = gateway::app::Application::serve(&config).await?;
            serve(
                app,
                "gateway,project,relay,notify",
                store_kind,
                bus_kind,
                shutdown,
            )
            .await?;
        }
        Command::Gateway => {
            let shutdown = shutdown_signal();
            let bus = workers::connect_bus(&config).await?;
            let notifications = Arc::new(workers::BusNotifications(bus));
            let app = gateway::app::Application::build(config.clone(), notifications).await?;
            serve(app, "gateway", store_kind, bus_kind, shutdown).await?;
        }
        Command::Relay => {
            let shutdown = shutdown_signal();
            started("relay", store_kind, bus_kind, None);
            workers::run_relay(&config, shutdown).await?;
            stopped("relay");
        }
        Command::Notify { action: None } => {
            let shutdown = shutdown_signal();
            started("notify", store_kind, bus_kind, None);
            workers::run_notify(&config, shutdown).await?;
            stopped("notify");
        }
        Command::Notify {
            action: Some(NotifyAction::DeadLetters),
        } => {
            let (_, read) = open(&config).await?;
            workers::print_dead_letters(&read).await?;
        }
        Command::Migrate => {
            open(&config).await?;
            tracing::info!("schema is up to date");
        }
        Command::Project { action } => {
            let (store, read) = open(&config).await?;
            let log = Arc::new(wiring::StoreLog(store));
            match action {
                None => {
                    let shutdown = shutdown_signal();
                    started("project", store_kind, "none", None);
                    projections::Projector::new(log, read)
                        .run(Arc::new(tokio::sync::Notify::new()), shutdown)
                        .await;
                    stopped("project");
                }
                Some(ProjectAction::Rebuild { projection }) => {
                    anyhow::ensure!(projection == "profiles", "unknown projection {projection}");
                    let folded = std::sync::atomic::AtomicU64::new(0);
                    let report = with_progress(
                        &format!("rebuilding {projection} from the event log"),
                        "events",
                        &folded,
                        projections::rebuild::rebuild_counting(log, &read, 5000, &folded),
                    )
                    .await
                    .with_context(|| format!("rebuilding {projection}"))?;
                    println!(
                        "rebuilt {projection}: {} events in {:.2}s ({:.0} events/s)",
                        report.events,
                        report.seconds,
                        report.events as f64 / report.seconds.max(1e-9)
                    );
                }
            }
        }
        Command::Audit { command } => {
            let (store, read) = open(&config).await?;
            let days = domain::password::PasswordPolicy::default().reminder_after_days;
            let audit = gateway::audit::service(&store, read, days);
            // `verify --all` shows its own progress (events read, rate) while it walks.
            let verified = gateway::audit::run(command, &audit).await?;
            if !verified {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Outbox { command } => {
            gateway::outbox::run(command, &config.data_dir).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves HTTP with the application's roles until SIGTERM or Ctrl-C, with a line at start (the
/// URL and the roles) and one at shutdown.
async fn serve(
    app: gateway::app::Application,
    roles: &str,
    store: &str,
    bus: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let url = app
        .local_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| format!("http://{addr}"));
    started(roles, store, bus, Some(&url));
    let served = app.run_until_stopped(shutdown).await;
    stopped(roles);
    served
}

/// The line at start: the roles, the store and the bus, and the URL when it serves HTTP.
fn started(roles: &str, store: &str, bus: &str, url: Option<&str>) {
    match url {
        Some(url) => tracing::info!(%url, roles, store, bus, "accountd started"),
        None => tracing::info!(roles, store, bus, "accountd started"),
    }
}

/// The line at shutdown.
fn stopped(roles: &str) {
    tracing::info!(roles, "accountd stopped");
}
