//! `accountd-bench audit-verify`: `audit verify --all` throughput on generated, correctly
//! chained events, beside a read-only walk of the same table.

use std::time::Instant;

use chrono::Utc;
use gateway::audit::{service, StoreAuditLog};
use projections::audit::AuditLog;
use projections::ReadStore;
use testkit::sample;
use testkit::Scratch;

/// `audit verify --all` throughput on `events` generated events over `accounts` accounts,
/// written with correct chain hashes into a scratch database (PostgreSQL created through
/// `admin_url`, or a SQLite file when `sqlite`), anchored once. Prints events/s, beside a
/// baseline: the same walk of the table without verifying.
pub async fn bench_verify(
    admin_url: &str,
    events: usize,
    accounts: usize,
    sqlite: bool,
) -> anyhow::Result<()> {
    let db = if sqlite {
        Scratch::sqlite().await?
    } else {
        Scratch::postgres(admin_url).await?
    };
    let store = db.store.clone();
    let read = ReadStore::open(store.location()).await?;
    let backend = if sqlite { "SQLite" } else { "PostgreSQL" };
    println!("accountd-bench audit-verify: {events} events over {accounts} accounts on {backend}");

    let started = Instant::now();
    let history = sample::history(accounts, events, 42);
    println!("  generated in {:.1}s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    sample::insert_chained(&store, &history, sample::start()).await?;
    drop(history);
    store.events().analyze().await?;
    println!("  inserted in {:.1}s", started.elapsed().as_secs_f64());

    let audit = service(&store, read, 90);
    let started = Instant::now();
    let anchor = audit.create_anchor(Utc::now()).await?;
    println!(
        "  anchor of {} streams created in {:.2}s",
        anchor.streams,
        started.elapsed().as_secs_f64()
    );

    // Baseline: the same walk of the table, reading every page, verifying nothing.
    let log = StoreAuditLog(store.clone());
    let started = Instant::now();
    let mut after: Option<(String, u64)> = None;
    let mut read = 0usize;
    loop {
        let page = log
            .streams(after.clone(), 10_000)
            .await
            .map_err(anyhow::Error::msg)?;
        read += page.len();
        match page.last() {
            Some(last) if page.len() == 10_000 => {
                after = Some((last.aggregate_id.clone(), last.sequence))
            }
            _ => break,
        }
    }
    let baseline = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let report = audit.verify_all().await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.ok(),
        "the generated store did not verify: {report:?}"
    );
    anyhow::ensure!(report.events as usize == events && read == events);
    println!(
        "  read only:       {:>9.0} events/s ({baseline:.2}s)",
        read as f64 / baseline
    );
    println!(
        "  verify --all:    {:>9.0} events/s ({seconds:.2}s, {} streams); {:.2}x the read-only time",
        report.events as f64 / seconds,
        report.streams,
        seconds / baseline
    );
    Ok(())
}
