//! `accountd-bench http --quick` (the run CI makes): it starts a real `accountd serve`, drives
//! every workload over HTTP, and reports the server's peak memory, on both stores. Its figures
//! are not asserted (shared machines are noisy); what is asserted is behaviour: every workload
//! ran, password checks beyond the cores were queued rather than refused, and peak memory
//! stayed under the 256 MiB bound.

use std::process::Command;

/// Runs the quick benchmark, returning its standard output; fails on a non-zero exit.
fn quick_bench(extra: &[&str]) -> String {
    let admin = std::env::var("ACCOUNTD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let output = Command::new(env!("CARGO_BIN_EXE_accountd-bench"))
        .args(["http", "--quick"])
        .env("ACCOUNTD_BIN", testkit::procs::accountd_bin())
        .args(extra)
        .env("ACCOUNTD_BENCH_DATABASE_URL", admin)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .output()
        .expect("run accountd-bench http");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The Markdown rows under the table whose title starts with `title`: (connections, ok/s,
/// not 2xx).
fn rows(out: &str, title: &str) -> Vec<(usize, f64, u64)> {
    let table = out
        .split(&format!("\n{title}"))
        .nth(1)
        .unwrap_or_else(|| panic!("no table {title:?} in:\n{out}"));
    table
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].parse().unwrap(),
                cells[2].parse().unwrap(),
                cells[3].parse().unwrap(),
            )
        })
        .collect()
}

fn peak_memory_mib(out: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("server memory: peak resident (VmHWM)"))
        .unwrap_or_else(|| panic!("no peak memory in:\n{out}"));
    line.split_whitespace().nth(5).unwrap().parse().unwrap()
}

fn assert_quick_run(out: &str) {
    for title in [
        "PUT /v1/me/contact-email, one account under every connection",
        "PUT /v1/me/contact-email, one account per connection",
        "GET /v1/me",
        "POST /v1/sessions",
        "POST /v1/accounts",
    ] {
        let rows = rows(out, title);
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 8],
            "{title}"
        );
        assert!(rows.iter().all(|r| r.1 > 0.0), "{title}: nothing succeeded");
    }
    for title in ["POST /v1/sessions", "POST /v1/accounts"] {
        assert!(
            rows(out, title).iter().all(|r| r.2 == 0),
            "{title}: password work beyond the cores must wait, not be refused:\n{out}"
        );
    }
    let peak = peak_memory_mib(out);
    assert!(peak > 0.0 && peak < 256.0, "peak memory {peak} MiB");
}

#[test]
fn the_quick_http_benchmark_runs_every_workload_on_postgres() {
    assert_quick_run(&quick_bench(&[]));
}

#[test]
fn the_quick_http_benchmark_runs_every_workload_on_the_embedded_store() {
    assert_quick_run(&quick_bench(&["--embedded"]));
}

#[test]
fn only_the_workloads_asked_for_run() {
    let out = quick_bench(&["--only", "me"]);
    assert_eq!(rows(&out, "GET /v1/me").len(), 2);
    for title in [
        "PUT /v1/me/contact-email",
        "POST /v1/sessions",
        "POST /v1/accounts",
    ] {
        assert!(!out.contains(title), "{title} ran:\n{out}");
    }
}
