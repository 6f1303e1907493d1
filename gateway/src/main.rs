//! The `accountd` binary: one process with every role (`serve`, the default), or one role per
//! process, plus operations (`migrate`) and benchmarks (`bench`).
#![forbid(unsafe_code)]

use gateway::{bench, config, wiring, workers};

use std::sync::Arc;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "accountd",
    version,
    about = "The account service of a cloud provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process (the default).
    Serve,
    /// Run only the HTTP gateway (scale out beside `project`, `relay`, `notify`).
    Gateway,
    /// Run only the relay from the event store to NATS (needs NATS_URL).
    Relay,
    /// Run only the notifier (planner and worker; any number of them) and the password-age
    /// reminder sweep (needs NATS_URL); or list the dead letters.
    Notify {
        #[command(subcommand)]
        action: Option<NotifyAction>,
    },
    /// Create or update the store's schema, then exit.
    Migrate,
    /// Run the projector (the read models), or rebuild a projection from the log.
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
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
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

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Opens the store and the read store on it, both migrated.
async fn open(
    config: &config::Config,
) -> anyhow::Result<(commands::Store, projections::ReadStore)> {
    let store = config.open_store().await?;
    let read = config.open_read_store().await?;
    Ok((store, read))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = config::Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = gateway::app::Application::serve(&config).await?;
            tracing::info!(port = app.port(), "accountd is listening (every role)");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Gateway => {
            let bus = workers::connect_bus(&config).await?;
            let notifications = Arc::new(workers::BusNotifications(bus));
            let app = gateway::app::Application::build(config.clone(), notifications).await?;
            tracing::info!(port = app.port(), "accountd gateway is listening");
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Relay => workers::run_relay(&config, shutdown_signal()).await,
        Command::Notify { action: None } => workers::run_notify(&config, shutdown_signal()).await,
        Command::Notify {
            action: Some(NotifyAction::DeadLetters),
        } => {
            let (_, read) = open(&config).await?;
            workers::print_dead_letters(&read).await
        }
        Command::Migrate => {
            open(&config).await?;
            tracing::info!("schema is up to date");
            Ok(())
        }
        Command::Project { action } => {
            let (store, read) = open(&config).await?;
            let log = Arc::new(wiring::StoreLog(store));
            match action {
                None => {
                    projections::Projector::new(log, read)
                        .run(Arc::new(tokio::sync::Notify::new()), shutdown_signal())
                        .await;
                }
                Some(ProjectAction::Rebuild { projection }) => {
                    anyhow::ensure!(projection == "profiles", "unknown projection {projection}");
                    let report = projections::rebuild::rebuild(log, &read, 5000).await?;
                    println!(
                        "rebuilt {projection}: {} events in {:.2}s ({:.0} events/s)",
                        report.events,
                        report.seconds,
                        report.events as f64 / report.seconds.max(1e-9)
                    );
                }
            }
            Ok(())
        }
        Command::Audit { command } => {
            let (store, read) = open(&config).await?;
            let days = domain::password::PasswordPolicy::default().reminder_after_days;
            let audit = gateway::audit::service(&store, read, days);
            if !gateway::audit::run(command, &audit).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Outbox { command } => Ok(gateway::outbox::run(command, &config.data_dir).await?),
        Command::Bench { which } => bench::run(which, &config).await,
    }
}
