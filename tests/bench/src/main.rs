//! # accountd-bench
//!
//! The benchmarks of accountd, each printing figures beside a baseline measured in the same run
//! on the same machine, and their ratio: these machines are shared and noisy, so absolute
//! numbers mean little. Never timed tests. Not part of `accountd`: a binary of its own, built
//! with `cargo build --release -p bench` (docs/benchmarks.md), so nothing here — nor the sample
//! histories it generates (`testkit::sample`) — is compiled into the service.
//!
//! - `http` ([`http`]): reads, cheap commands and password checks over real HTTP against an
//!   `accountd serve` it starts (the `accountd` binary beside this one, or `ACCOUNTD_BIN`).
//! - `commands`, `rebuild`, `enumeration`: in this file.
//! - `notify` ([`notify`]) and `audit-verify` ([`audit_verify`]).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use commands::hasher::PasswordHasher;
use commands::secrets::Keyring;
use commands::store::SerializedEvent;
use commands::{CommandContext, CommandService};
use domain::password::{Password, PasswordPolicy};
use domain::values::{AccountId, Email};
use domain::{AccountCommand, SessionId};
use gateway::config::Config;
use gateway::progress::{with_spinner, Stdout};
use testkit::Scratch;

mod audit_verify;
mod http;
mod load;
mod notify;

use load::{measure, InsertBaseline};

/// accountd's benchmarks: figures beside a baseline measured in the same run.
#[derive(Parser)]
#[command(name = "accountd-bench", version)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    with_spinner("benchmarking", Stdout::AsItGoes, run(cli.bench)).await
}

/// The PostgreSQL through which a benchmark makes its scratch databases (and drops them).
#[derive(clap::Args)]
pub(crate) struct AdminUrl {
    /// A PostgreSQL URL through which scratch databases are created (and dropped).
    #[arg(
        long,
        env = "ACCOUNTD_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub(crate) admin_url: String,
}

#[derive(Subcommand)]
enum Bench {
    /// Over real HTTP: reads, cheap commands and password checks at 1-128 connections, each
    /// beside its floor measured in the same run, and the server's peak memory.
    Http(http::HttpBench),
    /// Commands/s through `CommandService` on PostgreSQL vs. a pgbench-style insert baseline.
    Commands {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Client counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
        clients: Vec<usize>,
        #[command(flatten)]
        admin: AdminUrl,
    },
    /// `accountd project rebuild` throughput (events/s) and peak memory on a generated history.
    Rebuild {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 50_000)]
        accounts: usize,
        #[command(flatten)]
        admin: AdminUrl,
    },
    /// Commit-to-send latency and messages/s through relay and notifier (file sink).
    Notify {
        #[arg(long, default_value_t = 2000)]
        accounts: usize,
        #[arg(long, default_value_t = 1)]
        writers: usize,
        /// PostgreSQL through which a scratch database is made; unset: a scratch SQLite file.
        #[arg(long)]
        admin_url: Option<String>,
        /// NATS; unset: the in-process bus.
        #[arg(long)]
        nats_url: Option<String>,
    },
    /// `audit verify --all` throughput (events/s) on a generated history with real chain hashes.
    AuditVerify {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 50_000)]
        accounts: usize,
        /// Measure the embedded SQLite store instead of PostgreSQL.
        #[arg(long)]
        sqlite: bool,
        #[command(flatten)]
        admin: AdminUrl,
    },
    /// Median response-time difference between known and unknown accounts on the routes that
    /// must not reveal existence (password-reset requests, recovery by mobile and by account ID,
    /// refused password sign-ins), over HTTP.
    Enumeration {
        /// Requests per kind (known and unknown) and route.
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        #[command(flatten)]
        admin: AdminUrl,
    },
}

async fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Http(args) => http::run(args).await,
        Bench::Commands {
            seconds,
            clients,
            admin,
        } => commands_bench(Duration::from_secs(seconds), &clients, &admin.admin_url).await,
        Bench::Enumeration { requests, admin } => {
            enumeration_bench(requests, &admin.admin_url).await
        }
        Bench::Rebuild {
            events,
            accounts,
            admin,
        } => rebuild_bench(events, accounts, &admin.admin_url).await,
        Bench::Notify {
            accounts,
            writers,
            admin_url,
            nats_url,
        } => {
            notify::bench_notify(notify::NotifyBench {
                accounts,
                writers,
                admin_url,
                nats_url,
            })
            .await
        }
        Bench::AuditVerify {
            events,
            accounts,
            sqlite,
            admin,
        } => audit_verify::bench_verify(&admin.admin_url, events, accounts, sqlite).await,
    }
}

/// Generates a realistic history, writes it to a scratch database, then rebuilds the read models
/// from it. The baseline in the same run is a plain sequential scan of the same events.
async fn rebuild_bench(events: usize, accounts: usize, admin_url: &str) -> anyhow::Result<()> {
    use domain::stored::to_payload;
    let db = Scratch::postgres(admin_url).await?;
    let read = projections::ReadStore::open(db.location()).await?;
    let generated =
        tokio::task::spawn_blocking(move || testkit::sample::history(accounts, events, 7)).await?;
    for chunk in generated.chunks(5000) {
        let rows = chunk
            .iter()
            .map(|e| {
                Ok(SerializedEvent::new(
                    e.aggregate_id.clone(),
                    usize::try_from(e.sequence)?,
                    "Account".to_owned(),
                    e.event.type_name().to_owned(),
                    "1".to_owned(),
                    to_payload(&e.event)?,
                    serde_json::json!({}),
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        db.store.events().append("Account", &rows, &[]).await?;
    }
    drop(generated);
    let scan = Instant::now();
    let log = gateway::wiring::StoreLog(db.store.clone());
    let mut at = domain::stored::Checkpoint::default();
    let mut scanned = 0usize;
    loop {
        let batch = projections::EventLog::read_after(&log, at, 5000)
            .await
            .map_err(anyhow::Error::msg)?;
        let Some(last) = batch.last() else { break };
        at = last.checkpoint;
        scanned += batch.len();
    }
    let scan_rate = scanned as f64 / scan.elapsed().as_secs_f64();
    let report = projections::rebuild::rebuild(Arc::new(log), &read, 5000).await?;
    let rate = report.events as f64 / report.seconds;
    println!(
        "accountd-bench rebuild: {} events over {accounts} accounts (PostgreSQL)",
        report.events
    );
    println!("  reading the log alone:  {scan_rate:>10.0} events/s");
    println!(
        "  rebuild:                {rate:>10.0} events/s ({:.1} s), ratio to reading {:.2}",
        report.seconds,
        rate / scan_rate
    );
    // The rebuild's memory, as an operator runs it: in a process of its own. This process's
    // peak would mostly be the generator's: the allocator keeps the freed history resident.
    let (said, peak) = rebuild_process(db.location()).await?;
    println!("  accountd project rebuild, its own process: {said}");
    println!("    peak resident memory of that process: {peak:.0} MiB");
    println!("goal (issue 16): >= 150000 events/s");
    Ok(())
}

/// Runs `accountd project rebuild` on `database`, reading its `VmHWM` every 10 ms while it runs;
/// returns the line it printed and its peak resident memory in MiB.
async fn rebuild_process(database: &str) -> anyhow::Result<(String, f64)> {
    let (mut command, data_dir) = http::accountd_command(&["project", "rebuild"])?;
    let mut child = command
        .env("DATABASE_URL", database)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting accountd project rebuild")?;
    let mut peak = 0.0_f64;
    let status = loop {
        if let Some(hwm) = http::status_mib(child.id(), "VmHWM:") {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out)?;
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    anyhow::ensure!(
        status.success(),
        "accountd project rebuild failed: {status}"
    );
    let said = out.lines().find(|l| l.starts_with("rebuilt")).unwrap_or("");
    Ok((said.to_owned(), peak))
}

/// Known and unknown inputs alternate, one request at a time, so both see the same machine.
async fn enumeration_bench(requests: usize, admin_url: &str) -> anyhow::Result<()> {
    use commands::claims::ClaimKind;
    use domain::values::{AccountId, Mobile};
    use gateway::app::Application;

    let db = Scratch::postgres(admin_url).await?;
    let key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rand::random::<[u8; 32]>(),
    );
    let vars = [
        ("DATABASE_URL", db.location().to_owned()),
        ("ACCOUNTD_SECRET_KEY", key),
        ("ACCOUNTD_BIND", "127.0.0.1:0".to_owned()),
        ("ACCOUNTD_IP_RATE_LIMIT", "0".to_owned()),
    ];
    let config = Config::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })?;
    let app = Application::build(config, Arc::new(gateway::wiring::NoBus)).await?;
    let service = app.state().service.clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    let projector = app.projector();
    let app = app.with_worker(projector);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    // Known accounts, registered straight through the executor: one per reset request and
    // refused sign-in (each email has its own rate limit and lock), all with one real Argon2id
    // hash so that a refused sign-in does the real check; and one known recovery mobile.
    let context = CommandContext::system();
    let password = domain::password::Password::parse("Bench#2026pw", service.policy())?;
    let hash = service.hasher().hash(&password).await?;
    let mut known_emails = Vec::with_capacity(requests);
    for i in 0..requests {
        let id = AccountId::from_number(service.store().next_account_number().await?)?;
        let email = Email::parse(&format!("known{i}@example.com"))?;
        service
            .claim(ClaimKind::LoginEmail, email.as_str(), id.as_str())
            .await?;
        service
            .execute(
                &id,
                AccountCommand::RegisterWithEmail {
                    account_id: id.clone(),
                    login_email: email.clone(),
                    password_hash: hash.clone(),
                    code_id: format!("bench-{i}"),
                },
                &context,
            )
            .await?;
        service
            .store()
            .hold(ClaimKind::LoginEmail, email.as_str(), id.as_str())
            .await?;
        known_emails.push(email);
    }
    let mobile = Mobile::parse("+8613800138000")?;
    let id = AccountId::from_number(service.store().next_account_number().await?)?;
    service
        .execute(
            &id,
            AccountCommand::RegisterWithMobile {
                account_id: id.clone(),
                mobile: mobile.clone(),
            },
            &context,
        )
        .await?;

    let http = reqwest_like::Client::new();
    let mut reset = (Vec::new(), Vec::new());
    let mut recovery = (Vec::new(), Vec::new());
    let mut by_id = (Vec::new(), Vec::new());
    let mut sign_in = (Vec::new(), Vec::new());
    for (i, known_email) in known_emails.iter().enumerate() {
        let known = serde_json::json!({"login_email": known_email.as_str()});
        let unknown = serde_json::json!({"login_email": format!("nobody{i}@example.com")});
        reset.0.push(
            http.post_json(&base, "/v1/password-resets", &known, 202)
                .await?,
        );
        reset.1.push(
            http.post_json(&base, "/v1/password-resets", &unknown, 202)
                .await?,
        );
        let known = serde_json::json!({"method": "mobile", "mobile": mobile.as_str()});
        let unknown = serde_json::json!({"method": "mobile", "mobile": format!("+861390000{:04}", i % 10_000)});
        recovery.0.push(
            http.post_json(&base, "/v1/account-recovery", &known, 202)
                .await?,
        );
        recovery.1.push(
            http.post_json(&base, "/v1/account-recovery", &unknown, 202)
                .await?,
        );
        let nobody = AccountId::from_number(AccountId::LAST - 1 - i as u64)?;
        let known = serde_json::json!({"method": "account_id", "account_id": id.as_str()});
        let unknown = serde_json::json!({"method": "account_id", "account_id": nobody.as_str()});
        by_id.0.push(
            http.post_json(&base, "/v1/account-recovery", &known, 200)
                .await?,
        );
        by_id.1.push(
            http.post_json(&base, "/v1/account-recovery", &unknown, 200)
                .await?,
        );
        let known = serde_json::json!({"login": known_email.as_str(), "password": "Wrong#2026pw"});
        let unknown = serde_json::json!({"login": format!("nobody{i}@example.com"), "password": "Wrong#2026pw"});
        sign_in
            .0
            .push(http.post_json(&base, "/v1/sessions", &known, 401).await?);
        sign_in
            .1
            .push(http.post_json(&base, "/v1/sessions", &unknown, 401).await?);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    println!("accountd-bench enumeration: {requests} requests per kind and route, alternating");
    println!(
        "{:>22} {:>12} {:>12} {:>10}",
        "route", "known ms", "unknown ms", "diff ms"
    );
    for (route, (known, unknown)) in [
        ("password-resets", &mut reset),
        ("recovery by mobile", &mut recovery),
        ("recovery by id", &mut by_id),
        ("refused sign-in", &mut sign_in),
    ] {
        let (k, u) = (median(known), median(unknown));
        println!("{route:>22} {k:>12.3} {u:>12.3} {:>10.3}", (k - u).abs());
    }
    println!("goal: median difference under 5 ms");
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}

/// A minimal HTTP/1.1 client over tokio (no extra dependency in the binary): POSTs JSON and
/// returns the time to the full response.
mod reqwest_like {
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub struct Client;

    impl Client {
        pub fn new() -> Self {
            Self
        }

        pub async fn post_json(
            &self,
            base: &str,
            path: &str,
            body: &serde_json::Value,
            expect: u16,
        ) -> anyhow::Result<Duration> {
            let host = base.trim_start_matches("http://");
            let body = body.to_string();
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let started = Instant::now();
            let mut stream = TcpStream::connect(host).await?;
            stream.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            let elapsed = started.elapsed();
            let head = String::from_utf8_lossy(&response[..response.len().min(12)]).to_string();
            anyhow::ensure!(
                head.contains(&format!(" {expect}")),
                "{path}: unexpected answer {head} (expected {expect})"
            );
            Ok(elapsed)
        }
    }
}

async fn commands_bench(
    duration: Duration,
    client_counts: &[usize],
    admin_url: &str,
) -> anyhow::Result<()> {
    let max_clients = client_counts.iter().copied().max().unwrap_or(1);
    let db = Scratch::postgres(admin_url).await?;
    let baseline_insert = InsertBaseline::new(&db).await?;

    let service = Arc::new(CommandService::new(
        db.store.clone(),
        Keyring::new(rand::random(), []),
        PasswordHasher::for_this_machine(),
        PasswordPolicy::default(),
    ));
    let password = Password::parse("Bench#2026pw", service.policy()).context("bench password")?;
    let context = CommandContext::system();
    let mut accounts = Vec::with_capacity(max_clients);
    for client in 0..max_clients {
        let email = Email::parse(&format!("bench{client}@example.com"))?;
        let signed_up = service
            .sign_up_with_email(email, &password, &context)
            .await?;
        let session = SessionId::new(format!("bench-session-{client}"));
        service
            .verify_identity_with_password(
                &signed_up.account_id,
                &session,
                password.expose_secret(),
                &context,
            )
            .await?;
        accounts.push((signed_up.account_id, session));
    }
    let accounts: Arc<Vec<(AccountId, SessionId)>> = Arc::new(accounts);
    println!(
        "accountd-bench commands: {}s per run, contact email change per command",
        duration.as_secs()
    );
    println!(
        "{:>7} {:>12} {:>9} {:>9} {:>12} {:>9} {:>9} {:>7}",
        "clients", "commands/s", "p50 ms", "p99 ms", "baseline/s", "p50 ms", "p99 ms", "ratio"
    );
    for &clients in client_counts {
        let baseline = baseline_insert.measure(clients, duration).await?;

        let service = service.clone();
        let accounts = accounts.clone();
        let run = measure(clients, duration, move |client, i| {
            let service = service.clone();
            let accounts = accounts.clone();
            async move {
                let (id, session) = &accounts[client];
                let email = Email::parse(&format!("c{client}.{i}@example.com"))?;
                // The command itself, straight through the service (the HTTP flow adds the
                // per-target rate limit on top).
                let command = AccountCommand::ChangeContactEmail {
                    session_id: session.clone(),
                    email,
                    code_id: format!("bench-{client}-{i}"),
                };
                service
                    .execute(id, command, &CommandContext::system())
                    .await?;
                Ok(true)
            }
        })
        .await?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{:>7} {:>12.0} {:>9.2} {:>9.2} {:>12.0} {:>9.2} {:>9.2} {:>7.2}",
            clients,
            run.per_second(),
            ms(run.percentile(0.5)),
            ms(run.percentile(0.99)),
            baseline.per_second(),
            ms(baseline.percentile(0.5)),
            ms(baseline.percentile(0.99)),
            run.per_second() / baseline.per_second()
        );
    }
    println!("target: ratio >= 0.50 at 32 clients");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks its definitions only when a command is built: two arguments with one id
    /// (say a flattened `admin_url` beside `http --url`) would panic at the first run.
    #[test]
    fn every_subcommand_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
