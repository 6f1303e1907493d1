//! The `accountd` binary: one process with every role (`serve`, the default), or one role per
//! process, plus operations (`migrate`) and benchmarks (`bench`).
#![forbid(unsafe_code)]

mod bench;
mod config;

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
    /// Create or update the store's schema, then exit.
    Migrate,
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        which: bench::Bench,
    },
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
            let store = config.open_store().await?;
            config.keyring()?;
            store.ping().await?;
            tracing::warn!(
                bind = %config.bind,
                "the store is open and migrated; the HTTP gateway is not built yet (see README)"
            );
            Ok(())
        }
        Command::Migrate => {
            config.open_store().await?;
            tracing::info!("schema is up to date");
            Ok(())
        }
        Command::Bench { which } => bench::run(which, &config).await,
    }
}
