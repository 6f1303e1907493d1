//! `accountd-bench http`: accountd over real HTTP (reqwest, one keep-alive connection per
//! client task), each workload beside a floor measured in the same run:
//!
//! | workload | floor |
//! |---|---|
//! | `GET /v1/me` | `GET /healthz` (the HTTP stack alone) |
//! | `PUT /v1/me/contact-email`, one account and one account per connection | one JSON row inserted per transaction on PostgreSQL (pgbench-style) |
//! | `POST /v1/sessions` (password sign-in), `POST /v1/accounts` (sign-up) | raw Argon2id, same parameters, on every core |
//!
//! It starts `accountd serve` as a child process (the `accountd` binary beside this one, or
//! `ACCOUNTD_BIN`; [`accountd_bin`]) (PostgreSQL, or the embedded store with
//! `--embedded`) so it can read the server's peak resident memory (`VmHWM`) after the load,
//! or measures a server at `--url`. Results print as Markdown tables for docs/benchmarks.md.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use argon2::Argon2;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Client, RequestBuilder};
use serde_json::{json, Value};
use testkit::Scratch;

use super::load::{measure, InsertBaseline, Run};

/// The password of every account the benchmark makes.
const PASSWORD: &str = "Bench#2026pw";

#[derive(clap::Args)]
pub struct HttpBench {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    connections: Vec<usize>,
    /// A short run for CI: 1 second per measurement at 1 and 8 connections.
    #[arg(long)]
    quick: bool,
    /// Measure the server at this URL instead of starting one (its memory is not reported).
    #[arg(long)]
    url: Option<String>,
    /// Start the server on the embedded SQLite store instead of PostgreSQL.
    #[arg(long)]
    embedded: bool,
    /// PostgreSQL through which the scratch databases (the server's, the baseline's) are made.
    #[command(flatten)]
    admin: crate::AdminUrl,
    /// NATS for the server it starts; unset: the in-process bus.
    #[arg(long)]
    nats_url: Option<String>,
    /// Only these workloads (all when unset), e.g. to profile one.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
}

/// The workloads, in the order they run.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// `PUT /v1/me/contact-email`, one account under every connection.
    ContactOneAccount,
    /// `PUT /v1/me/contact-email`, one account per connection.
    ContactManyAccounts,
    /// `GET /v1/me`.
    Me,
    /// `POST /v1/sessions` with a password.
    SignIn,
    /// `POST /v1/accounts` with a password.
    SignUp,
}

/// The server under test: a child `accountd serve`, or one at `--url`.
struct Server {
    base: String,
    child: Option<Child>,
    /// The data folder of a started server (its key, outbox and log), removed at the end.
    data_dir: Option<PathBuf>,
    /// The scratch database of a started server; dropped (and with it the database) after the
    /// child is stopped, as fields drop after `Drop::drop`.
    _database: Option<Scratch>,
}

impl Server {
    async fn start(args: &HttpBench) -> anyhow::Result<Self> {
        if let Some(url) = &args.url {
            return Ok(Self {
                base: url.trim_end_matches('/').to_owned(),
                child: None,
                data_dir: None,
                _database: None,
            });
        }
        // A free port: bound and released at once; nothing else on loopback races for it here.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let (mut command, data_dir) = accountd_command(&["serve"])?;
        let log = std::fs::File::create(data_dir.join("server.log"))?;
        command
            .env("ACCOUNTD_BIND", format!("127.0.0.1:{port}"))
            // Every request comes from 127.0.0.1: the per-IP limit would measure itself.
            .env("ACCOUNTD_IP_RATE_LIMIT", "0")
            .stdout(Stdio::null())
            .stderr(log);
        let database = if args.embedded {
            None
        } else {
            let database = Scratch::postgres(&args.admin.admin_url).await?;
            command.env("DATABASE_URL", database.location());
            Some(database)
        };
        if let Some(nats) = &args.nats_url {
            command.env("NATS_URL", nats).env(
                "ACCOUNTD_NATS_STREAM_PREFIX",
                format!("bench{}_", &run[..8]),
            );
        }
        let mut server = Self {
            base: format!("http://127.0.0.1:{port}"),
            child: Some(command.spawn().context("starting accountd serve")?),
            data_dir: Some(data_dir),
            _database: database,
        };
        server.wait_until_live().await?;
        Ok(server)
    }

    /// Polls `/healthz` until it answers, for at most a minute (start-up migrates the store).
    async fn wait_until_live(&mut self) -> anyhow::Result<()> {
        let http = Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "accountd serve exited at start ({status}); see its log in {:?}",
                        self.data_dir
                    );
                }
            }
            let live = http.get(format!("{}/healthz", self.base)).send().await;
            if live.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "accountd serve did not answer /healthz within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (peak, current) resident memory of the started server in MiB (Linux `VmHWM`, `VmRSS`).
    fn memory_mib(&self) -> Option<(f64, f64)> {
        let pid = self.child.as_ref()?.id();
        Some((status_mib(pid, "VmHWM:")?, status_mib(pid, "VmRSS:")?))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An account made for the benchmark, signed in, with a step-up valid for 10 minutes.
struct Account {
    login_email: String,
    token: String,
}

/// What the load sends: the base URL, and one client (so one keep-alive connection) per task.
#[derive(Clone)]
struct Load {
    base: Arc<str>,
    clients: Arc<Vec<Client>>,
}

impl Load {
    fn new(base: &str, connections: usize) -> anyhow::Result<Self> {
        let clients = (0..connections)
            .map(|_| {
                Client::builder()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(60))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            base: base.into(),
            clients: Arc::new(clients),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `connections` tasks sending `request(client, connection, i)` for `duration`; a 2xx
    /// answer counts as a success.
    async fn run(
        &self,
        connections: usize,
        duration: Duration,
        request: impl Fn(&Self, &Client, usize, usize) -> RequestBuilder + Send + Sync + 'static,
    ) -> anyhow::Result<Run> {
        let load = self.clone();
        let request = Arc::new(request);
        measure(connections, duration, move |connection, i| {
            let sent = request(&load, &load.clients[connection], connection, i).send();
            async move {
                let answer = sent.await?;
                let ok = answer.status().is_success();
                answer.bytes().await?;
                Ok(ok)
            }
        })
        .await
    }

    /// Sends `request` on the first connection; its JSON body, or an error naming the status.
    async fn call(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let answer = request.send().await?;
        let status = answer.status();
        let body = answer.text().await?;
        anyhow::ensure!(status.is_success(), "{status}: {body}");
        Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Signs up, signs in and steps up account `i` of this run.
    async fn account(&self, run: &str, i: usize) -> anyhow::Result<Account> {
        let http = &self.clients[i % self.clients.len()];
        let login_email = format!("bench.{run}.{i}@example.com");
        self.call(http.post(self.url("/v1/accounts")).json(&json!({
            "login_email": login_email, "password": PASSWORD,
        })))
        .await
        .context("sign-up")?;
        let session = self
            .call(http.post(self.url("/v1/sessions")).json(&json!({
                "login": login_email, "password": PASSWORD,
            })))
            .await
            .context("sign-in")?;
        let token = session["token"].as_str().context("a token")?.to_owned();
        let started = self
            .call(
                http.post(self.url("/v1/me/identity-verifications"))
                    .bearer_auth(&token)
                    .json(&json!({"method": "password"})),
            )
            .await
            .context("step-up")?;
        let id = started["verification_id"]
            .as_str()
            .context("a verification id")?;
        self.call(
            http.post(self.url(&format!("/v1/me/identity-verifications/{id}")))
                .bearer_auth(&token)
                .json(&json!({"password": PASSWORD})),
        )
        .await
        .context("step-up confirmation")?;
        Ok(Account { login_email, token })
    }
}

/// Raw Argon2id (the crate's defaults, as accountd uses) on one thread per core for
/// `duration`: hashes a second. Measured beside each password row: the machine's load moves.
async fn raw_argon2(duration: Duration) -> anyhow::Result<f64> {
    Ok(tokio::task::spawn_blocking(move || raw_argon2_blocking(duration)).await?)
}

fn raw_argon2_blocking(duration: Duration) -> f64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let deadline = started + duration;
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            std::thread::spawn(move || {
                let mut out = [0u8; 32];
                let mut hashes = 0u64;
                while Instant::now() < deadline {
                    // Same parameters as the hasher; the output is thrown away.
                    if Argon2::default()
                        .hash_password_into(PASSWORD.as_bytes(), b"benchsaltbenchsalt", &mut out)
                        .is_ok()
                    {
                        hashes += 1;
                    }
                }
                hashes
            })
        })
        .collect();
    let hashes: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    hashes as f64 / started.elapsed().as_secs_f64()
}

/// `accountd ARGS` as the benchmarks start it: a fresh data folder (returned; the caller removes
/// it), a random secret key, warnings only, no database or bus inherited from the environment.
pub(crate) fn accountd_command(args: &[&str]) -> anyhow::Result<(Command, PathBuf)> {
    let data_dir =
        std::env::temp_dir().join(format!("accountd_bench_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir)?;
    let key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rand::random::<[u8; 32]>(),
    );
    let mut command = Command::new(accountd_bin()?);
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env("ACCOUNTD_DATA_DIR", &data_dir)
        .env("ACCOUNTD_SECRET_KEY", key)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    Ok((command, data_dir))
}

/// A field of `/proc/<pid>/status` given in kB (`VmHWM`, `VmRSS`), in MiB (Linux).
pub(crate) fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The `accountd` binary to start: `ACCOUNTD_BIN`, else `accountd` in this binary's folder
/// (`target/release/` after `cargo build --release -p gateway -p bench`).
fn accountd_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ACCOUNTD_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let bin = std::env::current_exe()?.with_file_name("accountd");
    if !bin.exists() {
        bail!(
            "no accountd binary at {} (build it: cargo build --release -p gateway -p bench; or set ACCOUNTD_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The header of a table comparing `what` with `floor`.
fn header(what: &str, floor: &str) {
    println!();
    println!("{what} vs {floor}");
    println!();
    println!("| connections | ok/s | not 2xx | p50 ms | p99 ms | p99.9 ms | floor/s | floor p99 ms | ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

/// One row: the workload at `connections`, beside its floor (a rate, and a p99 when measured).
fn row(connections: usize, run: &Run, floor: f64, floor_p99: Option<Duration>) {
    println!(
        "| {connections} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {floor:.0} | {} | {:.2} |",
        run.per_second(),
        run.failed(),
        ms(run.percentile(0.5)),
        ms(run.percentile(0.99)),
        ms(run.percentile(0.999)),
        floor_p99.map_or_else(|| "–".to_owned(), |p| format!("{:.2}", ms(p))),
        run.per_second() / floor,
    );
}

pub async fn run(mut args: HttpBench) -> anyhow::Result<()> {
    if args.quick {
        args.seconds = 1;
        args.connections = vec![1, 8];
    }
    let only = args.only.clone();
    let runs = move |workload: Workload| only.is_empty() || only.contains(&workload);
    let duration = Duration::from_secs(args.seconds);
    let most = args.connections.iter().copied().max().unwrap_or(1);
    let server = Server::start(&args).await?;
    let load = Load::new(&server.base, most)?;
    let baseline_db = Scratch::postgres(&args.admin.admin_url).await?;
    let inserts = InsertBaseline::new(&baseline_db).await?;

    println!(
        "accountd-bench http: {} s per measurement, server {} ({})",
        args.seconds,
        server.base,
        match (&args.url, args.embedded) {
            (Some(_), _) => "given by --url",
            (None, true) => "started: accountd serve, embedded SQLite",
            (None, false) => "started: accountd serve, PostgreSQL",
        }
    );

    // One signed-in, stepped-up account per connection (the sign-up and sign-in are Argon2
    // work too, so this is also the first sustained password load).
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let setup = Instant::now();
    let accounts: Vec<Account> = futures::stream::iter(0..most)
        .map(|i| load.account(&run, i))
        .buffered(16)
        .try_collect()
        .await?;
    println!(
        "set-up: {most} accounts signed up, signed in and stepped up in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let tokens: Arc<Vec<String>> = Arc::new(accounts.iter().map(|a| a.token.clone()).collect());
    let logins: Arc<Vec<String>> = Arc::new(accounts.into_iter().map(|a| a.login_email).collect());

    // The step-ups last 10 minutes: the gated commands go first.
    for (title, one_account, workload) in [
        (
            "PUT /v1/me/contact-email, one account under every connection",
            true,
            Workload::ContactOneAccount,
        ),
        (
            "PUT /v1/me/contact-email, one account per connection",
            false,
            Workload::ContactManyAccounts,
        ),
    ] {
        if !runs(workload) {
            continue;
        }
        header(title, "one JSON insert per transaction (pgbench-style)");
        for &connections in &args.connections {
            let floor = inserts.measure(connections, duration).await?;
            let tokens = tokens.clone();
            let run_id = run.clone();
            let put = load
                .run(connections, duration, move |load, http, c, i| {
                    let token = &tokens[if one_account { 0 } else { c }];
                    http.put(load.url("/v1/me/contact-email"))
                        .bearer_auth(token)
                        .json(&json!({"email": format!("c.{run_id}.{one_account}.{connections}.{c}.{i}@example.com")}))
                })
                .await?;
            row(
                connections,
                &put,
                floor.per_second(),
                Some(floor.percentile(0.99)),
            );
        }
    }

    if runs(Workload::Me) {
        header("GET /v1/me", "GET /healthz");
        for &connections in &args.connections {
            let floor = load
                .run(connections, duration, |load, http, _, _| {
                    http.get(load.url("/healthz"))
                })
                .await?;
            let tokens = tokens.clone();
            let me = load
                .run(connections, duration, move |load, http, c, _| {
                    http.get(load.url("/v1/me")).bearer_auth(&tokens[c])
                })
                .await?;
            row(
                connections,
                &me,
                floor.per_second(),
                Some(floor.percentile(0.99)),
            );
        }
    }

    if runs(Workload::SignIn) {
        header(
            "POST /v1/sessions (password sign-in)",
            "raw Argon2id on every core",
        );
        for &connections in &args.connections {
            let logins = logins.clone();
            let sign_in = load
                .run(connections, duration, move |load, http, c, _| {
                    http.post(load.url("/v1/sessions"))
                        .json(&json!({"login": logins[c], "password": PASSWORD}))
                })
                .await?;
            row(connections, &sign_in, raw_argon2(duration).await?, None);
        }
    }

    if runs(Workload::SignUp) {
        header(
            "POST /v1/accounts (sign-up with a password)",
            "raw Argon2id on every core",
        );
        for &connections in &args.connections {
            let run_id = run.clone();
            let sign_up = load
                .run(connections, duration, move |load, http, c, i| {
                    http.post(load.url("/v1/accounts")).json(&json!({
                        "login_email": format!("s.{run_id}.{connections}.{c}.{i}@example.com"),
                        "password": PASSWORD,
                    }))
                })
                .await?;
            row(connections, &sign_up, raw_argon2(duration).await?, None);
        }
    }

    println!();
    match server.memory_mib() {
        Some((peak, now)) => println!(
            "server memory: peak resident (VmHWM) {peak:.0} MiB, resident after the load {now:.0} MiB (goal: peak < 256 MiB)"
        ),
        None => println!("server memory: not measured (the server was not started by the benchmark)"),
    }
    println!("goals: /v1/me >= 0.30 of /healthz; contact-email (one account per connection) >= 0.30 of the insert at 32 connections; sign-ins >= 0.80 of raw Argon2id");
    Ok(())
}
