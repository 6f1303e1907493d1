//! Private PostgreSQL and NATS servers for fault tests: each test starts its own on a free
//! loopback port, stops and restarts it as an outage would, and kills only that process, by
//! its PID. The shared servers on 5432 and 4222 are never touched.
//!
//! - [`PrivatePostgres`]: `initdb` into a temporary folder, then `postgres` (as the `postgres`
//!   user when the tests run as root, since PostgreSQL refuses to run as root).
//! - [`PrivateNats`]: `nats-server -js` with its own JetStream folder, so streams survive a
//!   restart as they would on a real server.
//!
//! - [`NatsCluster`]: three `nats-server -js` clustered on loopback (the cluster test), any of
//!   which can be killed.
//! - [`Accountd`]: one `accountd` process of one role ([`accountd_bin`] finds the binary).
//!
//! All are killed by their PID on drop, and the servers' folders removed.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The folder of `initdb` and `postgres`: `ACCOUNTD_PG_BINDIR`, else the newest of Debian's
/// `/usr/lib/postgresql/*/bin` (as `deploy/local/postgres.sh` finds them).
fn pg_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ACCOUNTD_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL's server programs (Debian package postgresql, or ACCOUNTD_PG_BINDIR)")
}

/// `ACCOUNTD_TEST_NATS_SERVER` (set by deploy/test.sh), else Debian's nats-server.
fn nats_server() -> PathBuf {
    std::env::var_os("ACCOUNTD_TEST_NATS_SERVER")
        .map_or_else(|| PathBuf::from("/usr/sbin/nats-server"), PathBuf::from)
}
/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A port nobody listens on now (the OS picks it; the listener is closed again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// A fresh temporary folder.
pub fn scratch_dir(kind: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("accountd_{kind}_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// Waits until something accepts TCP connections on `port`.
async fn until_listening(port: u16, what: &str) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    crate::poll(
        &format!("{what} to listen on {port}"),
        START_TIMEOUT,
        || async move {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .ok()
                .map(drop)
        },
    )
    .await;
}

/// Sends `signal` (`INT`, `KILL`, …) to `pid` with kill(1), then waits for `child` to exit.
async fn signal_and_wait(child: &mut Child, signal: &str) {
    let Some(pid) = child.id() else {
        return; // Already reaped.
    };
    let sent = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .await
        .expect("kill(1) runs");
    assert!(sent.success(), "kill -{signal} {pid} failed");
    let waited = tokio::time::timeout(START_TIMEOUT, child.wait()).await;
    if waited.is_err() {
        // It did not stop in time: make sure it does.
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// The uid and gid of the `postgres` user, when this process is root (PostgreSQL refuses to
/// run as root); `None` otherwise.
fn postgres_user() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?;
    if uid != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let entry = passwd.lines().find(|line| line.starts_with("postgres:"))?;
    let mut fields = entry.split(':').skip(2);
    let uid = fields.next()?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    Some((uid, gid))
}

/// A command run as the `postgres` user when needed, its output appended to `log`.
fn pg_command(program: &str, log: &Path) -> Command {
    let mut command = Command::new(pg_bindir().join(program));
    if let Some((uid, gid)) = postgres_user() {
        command.uid(uid).gid(gid);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file");
    let err = log.try_clone().expect("a second handle on the log");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
    command
}

/// What the two servers share: a folder, a port, and the process while it runs. Dropping it
/// kills the process (SIGKILL, by its PID) and removes the folder.
struct Server {
    /// Named in messages.
    what: &'static str,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn new(what: &'static str, kind: &str) -> Self {
        Self {
            what,
            dir: scratch_dir(kind),
            port: free_port(),
            child: None,
        }
    }

    /// Spawns `command` and waits until it listens on the port.
    async fn spawn(&mut self, mut command: Command) {
        assert!(self.child.is_none(), "{} already runs", self.what);
        self.child = Some(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("{} does not start: {e}", self.what)),
        );
        until_listening(self.port, self.what).await;
    }

    /// Sends `signal` and waits for the process to exit.
    async fn stop(&mut self, signal: &str) {
        if let Some(mut child) = self.child.take() {
            signal_and_wait(&mut child, signal).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // A postmaster's backends exit when they see it gone.
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PostgreSQL server of this test's own.
pub struct PrivatePostgres(Server);

impl PrivatePostgres {
    /// Creates a cluster (trust authentication, user `postgres`) and starts it.
    pub async fn start() -> Self {
        let server = Server::new("the private PostgreSQL", "pg");
        if let Some((uid, gid)) = postgres_user() {
            std::os::unix::fs::chown(&server.dir, Some(uid), Some(gid))
                .expect("the folder given to postgres");
        }
        let log = server.dir.join("server.log");
        let initialised = pg_command("initdb", &log)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .arg("-D")
            .arg(server.dir.join("data"))
            .status()
            .await
            .expect("initdb runs");
        assert!(
            initialised.success(),
            "initdb failed; see {}",
            log.display()
        );
        let mut postgres = Self(server);
        postgres.restart().await;
        postgres
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.0.port)
    }

    /// Starts the server again (same data, same port) and waits until it listens.
    pub async fn restart(&mut self) {
        let dir = &self.0.dir;
        let mut command = pg_command("postgres", &dir.join("server.log"));
        command
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &self.0.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            // A test server: durability is not what these tests are about.
            // Two `accountd serve` processes with their pools fit (the notifier fault suite).
            .args(["-c", "fsync=off", "-c", "max_connections=300"]);
        self.0.spawn(command).await;
        // Listening is not ready: until recovery ends, connections are refused with "the
        // database system is starting up".
        let url = self.url();
        crate::poll(
            "the private PostgreSQL to accept connections",
            START_TIMEOUT,
            || {
                let url = url.clone();
                async move {
                    use sqlx::Connection;
                    let connection = sqlx::PgConnection::connect(&url).await.ok()?;
                    let _ = connection.close().await;
                    Some(())
                }
            },
        )
        .await;
    }

    /// Stops the server as `pg_ctl stop -m fast` does (SIGINT): clients are disconnected.
    pub async fn stop(&mut self) {
        self.0.stop("INT").await;
    }
}

/// A NATS server with JetStream of this test's own.
pub struct PrivateNats(Server);

impl PrivateNats {
    pub async fn start() -> Self {
        let mut nats = Self(Server::new("the private NATS server", "nats"));
        nats.restart().await;
        nats
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.0.port)
    }

    /// Starts the server again (same JetStream folder, same port) and waits until it listens.
    pub async fn restart(&mut self) {
        let mut command = Command::new(nats_server());
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &self.0.port.to_string()])
            .arg("-sd")
            .arg(self.0.dir.join("jetstream"))
            .arg("-l")
            .arg(self.0.dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        self.0.spawn(command).await;
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub async fn stop(&mut self) {
        self.0.stop("KILL").await;
    }
}

/// Three `nats-server -js` processes clustered on loopback (the cluster shape of
/// `deploy/nats/`): each with its own client port, route port, server name (`n1`, `n2`, `n3`)
/// and JetStream folder. Any node can be killed (SIGKILL, by PID) while the other two keep the
/// quorum of R3 streams, and started again on its own folder, as a node back from a crash.
pub struct NatsCluster {
    nodes: Vec<Server>,
    names: Vec<String>,
    routes: Vec<u16>,
    cluster_name: String,
}

impl NatsCluster {
    /// Starts the three nodes and waits until each listens for clients.
    pub async fn start() -> Self {
        let mut cluster = Self {
            nodes: (0..3)
                .map(|_| Server::new("a clustered NATS server", "nats_cluster"))
                .collect(),
            names: (1..=3).map(|i| format!("n{i}")).collect(),
            routes: (0..3).map(|_| free_port()).collect(),
            cluster_name: format!("accountd_{}", uuid::Uuid::new_v4().simple()),
        };
        for i in 0..3 {
            cluster.spawn(i).await;
        }
        cluster
    }

    /// Starts node `i` on its ports and folder (its JetStream state survives a kill).
    async fn spawn(&mut self, i: usize) {
        let route_urls = (self.routes.iter())
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let node = &mut self.nodes[i];
        let mut command = Command::new(nats_server());
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &node.port.to_string()])
            .args(["-n", &self.names[i], "--cluster_name", &self.cluster_name])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", self.routes[i])])
            .args(["--routes", &route_urls])
            .arg("-sd")
            .arg(node.dir.join("jetstream"))
            .arg("-l")
            .arg(node.dir.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        node.spawn(command).await;
    }

    fn index(&self, name: &str) -> usize {
        (self.names.iter())
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no NATS node {name}"))
    }

    /// The client URLs of every node, comma-separated (as `NATS_URL` takes them).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server names, in start order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The OS process id of the node named `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        let i = self.names.iter().position(|n| n == name)?;
        self.nodes[i].child.as_ref()?.id()
    }

    /// Kills the node named `name` (SIGKILL, by its PID), as a crash would.
    pub async fn kill(&mut self, name: &str) {
        let i = self.index(name);
        self.nodes[i].stop("KILL").await;
    }

    /// Starts the killed node `name` again on its own ports and JetStream folder, and waits
    /// until it listens; it rejoins the cluster and catches up the streams it replicates.
    pub async fn restart(&mut self, name: &str) {
        let i = self.index(name);
        self.spawn(i).await;
    }
}

/// The `accountd` binary under test: `ACCOUNTD_TEST_BIN`, else `accountd` beside the test
/// binary's folder (`target/debug/accountd`; the test binary lives in `target/debug/deps/`),
/// built with `cargo build -p gateway --bin accountd` when missing.
pub fn accountd_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ACCOUNTD_TEST_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("accountd");
    if !bin.exists() {
        let built = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .args(["build", "-p", "gateway", "--bin", "accountd"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .status()
            .expect("cargo runs");
        assert!(
            built.success(),
            "cargo build -p gateway --bin accountd failed"
        );
    }
    assert!(bin.exists(), "no accountd binary at {}", bin.display());
    bin
}

/// One `accountd` process (a role: `gateway`, `relay`, `project`, `notify`, …) with its own
/// environment, its log in a file. Killed (SIGKILL, by its PID) on drop.
pub struct Accountd {
    /// `gateway-1`, `relay-2`, …: also its PostgreSQL `application_name`.
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Accountd {
    /// Starts `accountd ARGS` with `env` on top of a clean environment (PATH and RUST_LOG kept).
    pub fn start(name: &str, args: &[&str], env: &[(String, String)], log: PathBuf) -> Self {
        // Appended to: a process started again after a kill keeps its earlier lines.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("a log file");
        let err = file.try_clone().expect("a second handle on the log");
        let mut command = Command::new(accountd_bin());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("accountd {name} does not start: {e}"));
        Self {
            name: name.to_owned(),
            log,
            child: Some(child),
        }
    }

    /// Its OS process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref()?.id()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Kills it (SIGKILL, by its PID) and waits for it to exit.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_and_wait(&mut child, "KILL").await;
        }
    }

    /// Waits until it listens on `port` (a gateway).
    pub async fn until_listening(&self, port: u16) {
        until_listening(port, &format!("accountd {}", self.name)).await;
    }
}

impl Drop for Accountd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}
