//! The `accountd` binary as an operator meets it: configuration and start-up errors as one
//! line with the real cause, `DATABASE_URL=sqlite://…`, logs as JSON or as text without colour
//! codes when stderr is not a terminal, a line at start and at shutdown, and `--help` listing
//! the environment.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// A fresh data folder.
fn data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("accountd_cli_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `accountd ARGS` with only `vars` (and PATH) in its environment.
fn accountd(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_accountd"));
    command.args(args).env_clear().stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

/// Runs it to the end, checking that it took less than `within`.
fn run(command: &mut Command, within: Duration) -> Output {
    let started = Instant::now();
    let output = command.output().expect("accountd runs");
    assert!(
        started.elapsed() < within,
        "took {:?}: {output:?}",
        started.elapsed()
    );
    output
}

/// Asserts a failure whose stderr is exactly one line, and returns that line.
#[track_caller]
fn one_line_failure(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got:\n{stderr}");
    assert!(lines[0].starts_with("accountd: "), "{stderr}");
    assert!(!stderr.contains("Caused by"), "{stderr}");
    lines[0].to_owned()
}

#[test]
fn an_unreachable_database_is_one_line_saying_connection_refused_at_once() {
    let url = format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/accounts",
        closed_port()
    );
    let output = run(
        &mut accountd(
            &["migrate"],
            &[("DATABASE_URL", &url), ("ACCOUNTD_SECRET_KEY", KEY)],
        ),
        Duration::from_secs(3),
    );
    let line = one_line_failure(&output);
    assert!(line.contains("onnection refused"), "{line}");
    assert!(line.contains("127.0.0.1:"), "where it tried: {line}");
    assert!(!line.contains("hunter2"), "no password: {line}");
}

#[test]
fn an_unreachable_nats_is_one_line_naming_the_url_and_the_cause() {
    let dir = data_dir();
    let url = format!("nats://127.0.0.1:{}", closed_port());
    let output = run(
        &mut accountd(
            &["serve"],
            &[
                ("NATS_URL", &url),
                ("ACCOUNTD_DATA_DIR", dir.to_str().unwrap()),
                ("ACCOUNTD_BIND", "127.0.0.1:0"),
            ],
        ),
        Duration::from_secs(10),
    );
    let line = one_line_failure(&output);
    assert!(line.contains(&url), "the URL: {line}");
    assert!(line.contains("onnection refused"), "the cause: {line}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn configuration_errors_are_one_line() {
    for (name, value, expected) in [
        ("ACCOUNTD_BIND", "nowhere", "ACCOUNTD_BIND"),
        ("DATABASE_URL", "mysql://db/accounts", "sqlite://PATH"),
        ("DATABASE_URL", "sqlite::memory:", "in-memory"),
        ("ACCOUNTD_LOG_FORMAT", "xml", "text or json"),
        (
            "ACCOUNTD_SERVICE_TOKENS",
            "janitor:0123456789abcdef",
            "janitor",
        ),
    ] {
        let output = run(
            &mut accountd(&["migrate"], &[(name, value)]),
            Duration::from_secs(3),
        );
        let line = one_line_failure(&output);
        assert!(line.contains(expected), "{name}={value}: {line}");
    }
}

#[test]
fn a_sqlite_url_opens_that_file() {
    let dir = data_dir();
    let file = dir.join("elsewhere").join("events.db");
    let url = format!("sqlite://{}", file.display());
    let output = run(
        &mut accountd(
            &["migrate"],
            &[
                ("DATABASE_URL", &url),
                ("ACCOUNTD_DATA_DIR", dir.join("data").to_str().unwrap()),
            ],
        ),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{output:?}");
    assert!(file.exists(), "the store is the named file");
    assert!(!dir.join("data").join("accountd.db").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn logs_are_json_on_request_and_never_coloured_off_a_terminal() {
    let dir = data_dir();
    let data = dir.to_str().unwrap();
    let json = run(
        &mut accountd(
            &["migrate"],
            &[("ACCOUNTD_DATA_DIR", data), ("ACCOUNTD_LOG_FORMAT", "json")],
        ),
        Duration::from_secs(30),
    );
    assert!(json.status.success(), "{json:?}");
    let stderr = String::from_utf8_lossy(&json.stderr);
    assert!(stderr.lines().count() >= 1, "some log lines: {stderr}");
    for line in stderr.lines() {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }

    let text = run(
        &mut accountd(&["migrate"], &[("ACCOUNTD_DATA_DIR", data)]),
        Duration::from_secs(30),
    );
    assert!(text.status.success(), "{text:?}");
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(stderr.contains("schema is up to date"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escapes in a pipe: {stderr:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serve_says_where_it_listens_and_when_it_stops() {
    let dir = data_dir();
    let mut child = accountd(
        &["serve"],
        &[
            ("ACCOUNTD_DATA_DIR", dir.to_str().unwrap()),
            ("ACCOUNTD_BIND", "127.0.0.1:0"),
        ],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .expect("accountd serve starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut seen = String::new();
    let started = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr is readable") == 0 {
            panic!("accountd exited before its start line:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains("accountd started") {
            break line;
        }
    };
    assert!(started.contains("url=http://127.0.0.1:"), "{started}");
    assert!(
        started.contains("roles=\"gateway,project,relay,notify\"")
            || started.contains("roles=gateway,project,relay,notify"),
        "{started}"
    );
    // SIGTERM, to this child only, by its PID.
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("the rest of stderr");
    let status = child.wait().expect("accountd exits");
    assert!(status.success(), "{status:?}:\n{rest}");
    assert!(rest.contains("accountd stopped"), "{rest}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serve_help_lists_the_environment() {
    let output = run(
        &mut accountd(&["serve", "--help"], &[]),
        Duration::from_secs(5),
    );
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "ACCOUNTD_BIND",
        "ACCOUNTD_DATA_DIR",
        "DATABASE_URL",
        "NATS_URL",
        "ACCOUNTD_SECRET_KEY",
        "ACCOUNTD_SERVICE_TOKENS",
        "ACCOUNTD_LOG_FORMAT",
    ] {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
}
