//! `accountd-bench audit-verify`: `audit verify --all` throughput on generated, correctly
//! chained events, beside a read-only walk of the same table.

use std::time::Instant;

use chrono::{SecondsFormat, Utc};
use commands::store::{Scratch, SerializedEvent};
use commands::Store;
use domain::account::ACCOUNT_AGGREGATE_TYPE;
use domain::chain::{chain_hash, CHAIN_HASH_KEY, GENESIS};
use domain::stored::to_payload;
use gateway::audit::{service, StoreAuditLog};
use projections::audit::AuditLog;
use projections::ReadStore;
use serde_json::{json, Value};
use testkit::sample::{self, SampleEvent};

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
    insert_chained(&store, &history).await?;
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

/// Writes a generated history as the executor would: per-event metadata (event id, time,
/// actor) and each stream's chain hash. Times advance by one `sample::STEP` per event.
async fn insert_chained(store: &Store, history: &[SampleEvent]) -> anyhow::Result<()> {
    let mut heads: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    let start = sample::start();
    for (chunk_index, chunk) in history.chunks(5_000).enumerate() {
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, event) in chunk.iter().enumerate() {
            let n = chunk_index * 5_000 + i;
            let payload = to_payload(&event.event)?;
            let event_type = event.event.type_name();
            let occurred_at = start + sample::STEP * i32::try_from(n).unwrap_or(i32::MAX);
            let mut metadata = json!({
                "event_id": format!("00000000-0000-7000-8000-{n:012}"),
                "occurred_at": occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
                "actor": format!("account:{}", event.aggregate_id),
            });
            let previous = heads
                .get(event.aggregate_id.as_str())
                .map_or(GENESIS, String::as_str);
            let hash = chain_hash(previous, event_type, "1", &payload, &metadata);
            metadata[CHAIN_HASH_KEY] = Value::String(hash.clone());
            heads.insert(&event.aggregate_id, hash);
            rows.push(SerializedEvent::new(
                event.aggregate_id.clone(),
                usize::try_from(event.sequence)?,
                ACCOUNT_AGGREGATE_TYPE.to_owned(),
                event_type.to_owned(),
                "1".to_owned(),
                payload,
                metadata,
            ));
        }
        // One append of many streams: the store writes them in this order.
        (store.events())
            .append(ACCOUNT_AGGREGATE_TYPE, &rows, &[])
            .await?;
    }
    Ok(())
}
