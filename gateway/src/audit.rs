//! `accountd audit …` (SPEC §6, issue 7) and the audit port on the write side's store.
//!
//! - [`StoreAuditLog`]: `projections::audit::AuditLog` on `commands::Store` (the queries are
//!   in `commands/src/store/streams.rs`); [`service`] builds the `Audit` the HTTP handlers use,
//!   which implements their port `http::internal::Audit`.
//! - [`AuditCommand`]: the clap subcommands; [`run`] dispatches them and returns whether
//!   everything was found and verified (the binary exits with status 1 otherwise).
//! - [`history`], [`state`], [`verify`], [`export`]: one function per subcommand, writing to
//!   the `out` given (stdout in the binary) in the [`Format`] asked (human text by default,
//!   `--format json|ndjson`); diagnostics go to stderr.

use domain::PortError;
use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Subcommand, ValueEnum};
use commands::Store;
use domain::account::ACCOUNT_AGGREGATE_TYPE;
use domain::stored::{Checkpoint, RecordedEvent};
use domain::values::AccountId;
use projections::audit::{Audit, AuditLog, StreamHead, MAX_LIMIT};
use projections::ReadStore;
use serde_json::{json, Value};

/// The write side's store as the audit port.
#[derive(Clone, Debug)]
pub struct StoreAuditLog(pub Store);

impl AuditLog for StoreAuditLog {
    fn stream(
        &self,
        account_id: &str,
        after: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send {
        let store = self.0.clone();
        let account_id = account_id.to_owned();
        async move {
            store
                .stream_after(ACCOUNT_AGGREGATE_TYPE, &account_id, after, limit)
                .await
                .map_err(PortError::new)
        }
    }

    fn streams(
        &self,
        after: Option<(String, u64)>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send {
        let store = self.0.clone();
        async move {
            store
                .streams_after(
                    ACCOUNT_AGGREGATE_TYPE,
                    after.as_ref().map(|(id, s)| (id.as_str(), *s)),
                    limit,
                )
                .await
                .map_err(PortError::new)
        }
    }

    fn heads(&self) -> impl Future<Output = Result<Vec<StreamHead>, PortError>> + Send {
        let store = self.0.clone();
        async move {
            let heads = store
                .stream_heads(ACCOUNT_AGGREGATE_TYPE)
                .await
                .map_err(PortError::new)?;
            Ok(heads
                .into_iter()
                .map(|h| StreamHead {
                    account_id: h.aggregate_id,
                    sequence: h.sequence,
                    chain_hash: h.chain_hash,
                })
                .collect())
        }
    }

    fn chain_hashes_at(
        &self,
        keys: &[(String, u64)],
    ) -> impl Future<Output = Result<Vec<Option<String>>, PortError>> + Send {
        let store = self.0.clone();
        let keys = keys.to_vec();
        async move {
            store
                .chain_hashes_at(ACCOUNT_AGGREGATE_TYPE, &keys)
                .await
                .map_err(PortError::new)
        }
    }

    fn occurred_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Checkpoint,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send {
        let store = self.0.clone();
        async move {
            store
                .occurred_between(ACCOUNT_AGGREGATE_TYPE, since, until, after, limit)
                .await
                .map_err(PortError::new)
        }
    }
}

/// The audit service on `store`, keeping its anchors in `read`. `reminder_after_days` is the
/// password policy's reminder age.
pub fn service(store: &Store, read: ReadStore, reminder_after_days: i64) -> Audit<StoreAuditLog> {
    Audit::new(
        Arc::new(StoreAuditLog(store.clone())),
        read,
        reminder_after_days,
    )
}

/// The HTTP handlers' audit port (`http::internal::Audit`) on the audit service.
impl crate::http::internal::Audit for Audit<StoreAuditLog> {
    /// One page when `limit` is at most [`MAX_LIMIT`] (the audit route checks it); the whole
    /// history, page by page, for a larger one (`GET /v1/me/history` asks for everything).
    fn events<'a>(
        &'a self,
        account_id: &'a str,
        after: u64,
        limit: u32,
    ) -> commands::ports::PortFuture<'a, Value> {
        Box::pin(async move {
            let account = AccountId::parse(account_id).map_err(PortError::new)?;
            let mut events = Vec::new();
            let mut after = after;
            loop {
                let want = (limit as usize - events.len()).min(MAX_LIMIT as usize) as u32;
                let page = match self.history(&account, after, Some(want)).await {
                    Ok(Some(page)) => page.events,
                    Ok(None) => Vec::new(),
                    Err(e) => return Err(PortError::new(e)),
                };
                let full = page.len() == want as usize;
                after = page.last().map_or(after, |e| e.sequence);
                events.extend(page);
                if !full || events.len() >= limit as usize {
                    break;
                }
            }
            Ok(json!({ "events": events }))
        })
    }

    fn state<'a>(
        &'a self,
        account_id: &'a str,
        at: DateTime<Utc>,
    ) -> commands::ports::PortFuture<'a, Option<Value>> {
        Box::pin(async move {
            let account = AccountId::parse(account_id).map_err(PortError::new)?;
            let profile = self.state_at(&account, at).await.map_err(PortError::new)?;
            profile
                .map(|p| serde_json::to_value(p).map_err(PortError::new))
                .transpose()
        })
    }

    /// `null` for an account with no events and no anchored head.
    fn verification<'a>(&'a self, account_id: &'a str) -> commands::ports::PortFuture<'a, Value> {
        Box::pin(async move {
            let account = AccountId::parse(account_id).map_err(PortError::new)?;
            let verification = self.verify(&account).await.map_err(PortError::new)?;
            // `null` for a stream that never existed (no events, no anchored head): the route
            // answers 404.
            serde_json::to_value(verification).map_err(PortError::new)
        })
    }
}

/// `accountd audit …`. Every subcommand prints human text by default and takes
/// `--format json|ndjson` for machines (export: ndjson by default, its file format).
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print an account's whole history, secrets redacted.
    History {
        account_id: String,
        /// text: one line per event; json: `{"events": [...]}` as the audit API answers;
        /// ndjson: one event per line.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the profile as it stood at an instant, replayed from the events.
    State {
        account_id: String,
        /// RFC 3339, e.g. 2026-11-26T10:00:00Z.
        #[arg(long)]
        at: DateTime<Utc>,
        /// text: one line per field; json / ndjson: the profile as the audit API answers.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Verify the hash chain of one account, or of every account, against the latest anchor.
    /// Exit status 1 on any break.
    Verify {
        #[arg(required_unless_present = "all")]
        account_id: Option<String>,
        #[arg(long, conflicts_with = "account_id")]
        all: bool,
        /// text: where each break is, and a summary; json / ndjson: the report as one document.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write the events that occurred in [since, until) as ndjson, closed by a line holding
    /// the root hash of the exported lines.
    Export {
        #[arg(long)]
        since: DateTime<Utc>,
        #[arg(long)]
        until: DateTime<Utc>,
        /// ndjson: the export file (the root hash covers its lines); json: the same events and
        /// closing line as `{"events": [...], "summary": {...}}`. No text form.
        #[arg(long, value_enum, default_value_t = Format::Ndjson)]
        format: Format,
    },
}

/// How `accountd audit` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: one line per event, field or finding.
    Text,
    /// One JSON document.
    Json,
    /// One JSON value per line: per event for history and export, else the one document.
    Ndjson,
}

/// What `verify` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyTarget {
    Account(AccountId),
    All,
}

/// Runs one `accountd audit` subcommand, writing to stdout. `Ok(false)`: an account was not
/// found or something did not verify (exit status 1).
pub async fn run(command: AuditCommand, audit: &Audit<StoreAuditLog>) -> anyhow::Result<bool> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let outcome = match command {
        AuditCommand::History { account_id, format } => {
            history(audit, &parse_id(&account_id)?, format, &mut out).await
        }
        AuditCommand::State {
            account_id,
            at,
            format,
        } => {
            let account = parse_id(&account_id)?;
            state(audit, &account, at, format, &mut out).await
        }
        AuditCommand::Verify {
            account_id,
            all,
            format,
        } => {
            let target = match (account_id, all) {
                (_, true) => VerifyTarget::All,
                (Some(id), false) => VerifyTarget::Account(parse_id(&id)?),
                (None, false) => anyhow::bail!("name an account ID or --all"),
            };
            verify(audit, target, format, &mut out).await
        }
        AuditCommand::Export {
            since,
            until,
            format,
        } => export(audit, since, until, format, &mut out)
            .await
            .map(|_| true),
    };
    out.flush()?;
    outcome
}

fn parse_id(text: &str) -> anyhow::Result<AccountId> {
    AccountId::parse(text).with_context(|| format!("{text:?} is not an account ID"))
}

/// Writes `document` as `format` asks: pretty for json, one line for ndjson; `text` otherwise.
fn document(
    out: &mut impl Write,
    format: Format,
    document: &Value,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match format {
        Format::Text => text(out)?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, document)?;
            out.write_all(b"\n")?;
        }
        Format::Ndjson => writeln!(out, "{document}")?,
    }
    Ok(())
}

/// A JSON value as a person reads it in one cell: strings bare, `-` for null, else compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `accountd audit history ID`: every event of the account, redacted, page by page. `Ok(false)`
/// when the account has no events.
pub async fn history(
    audit: &Audit<StoreAuditLog>,
    account: &AccountId,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let Some(mut page) = audit.history(account, 0, Some(MAX_LIMIT)).await? else {
        eprintln!("account {account} has no events");
        return Ok(false);
    };
    match format {
        Format::Json => out.write_all(b"{\"events\":[")?,
        Format::Text => writeln!(out, "account {account}\n  seq  occurred at           event")?,
        Format::Ndjson => {}
    }
    let mut written = 0u64;
    loop {
        for event in &page.events {
            match format {
                Format::Json => {
                    if written > 0 {
                        out.write_all(b",")?;
                    }
                    serde_json::to_writer(&mut *out, event)?;
                }
                Format::Ndjson => writeln!(out, "{}", serde_json::to_string(event)?)?,
                Format::Text => writeln!(
                    out,
                    "{:>5}  {}  {} v{}  {}",
                    event.sequence,
                    event.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    event.event_type,
                    event.version,
                    event.payload
                )?,
            }
            written += 1;
        }
        let Some(last) = page.events.last().map(|e| e.sequence) else {
            break;
        };
        if page.events.len() < MAX_LIMIT as usize {
            break;
        }
        page = audit
            .history(account, last, Some(MAX_LIMIT))
            .await?
            .unwrap_or(projections::audit::History { events: Vec::new() });
    }
    match format {
        Format::Json => out.write_all(b"]}\n")?,
        Format::Text => writeln!(out, "{written} events")?,
        Format::Ndjson => {}
    }
    Ok(true)
}

/// `accountd audit state ID --at T`: the profile at `at`, unmasked. `Ok(false)` when the
/// account did not exist then.
pub async fn state(
    audit: &Audit<StoreAuditLog>,
    account: &AccountId,
    at: DateTime<Utc>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    let at_text = at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let Some(profile) = audit.state_at(account, at).await? else {
        eprintln!("account {account} did not exist at {at_text}");
        return Ok(false);
    };
    let profile = serde_json::to_value(&profile)?;
    document(out, format, &profile, |out| {
        writeln!(out, "account {account} as it stood at {at_text}")?;
        if let Value::Object(fields) = &profile {
            let width = fields.keys().map(String::len).max().unwrap_or(0);
            for (name, value) in fields {
                writeln!(out, "  {name:<width$}  {}", cell(value))?;
            }
        }
        Ok(())
    })?;
    Ok(true)
}

/// `accountd audit verify [ID | --all]`: prints what it found (where each break is) and
/// returns whether everything verified.
pub async fn verify(
    audit: &Audit<StoreAuditLog>,
    target: VerifyTarget,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<bool> {
    match target {
        VerifyTarget::Account(account) => {
            let Some(verification) = audit.verify(&account).await? else {
                eprintln!("account {account} has no events");
                return Ok(false);
            };
            let mut report = serde_json::to_value(&verification)?;
            report["account_id"] = json!(account.as_str());
            document(out, format, &report, |out| {
                match verification.first_broken_sequence {
                    None => write!(out, "account {account}: ok")?,
                    Some(sequence) => {
                        write!(out, "account {account}: broken at sequence {sequence}")?
                    }
                }
                writeln!(out, " ({} events checked)", verification.events_checked)
            })?;
            Ok(verification.ok)
        }
        VerifyTarget::All => {
            let started = Instant::now();
            let read = std::sync::atomic::AtomicU64::new(0);
            let report = crate::progress::with_progress(
                "verifying every account's chain",
                "events",
                &read,
                audit.verify_all_counting(&read),
            )
            .await?;
            let seconds = started.elapsed().as_secs_f64();
            let mut summary = serde_json::to_value(&report)?;
            summary["ok"] = json!(report.ok());
            summary["seconds"] = json!(seconds);
            document(out, format, &summary, |out| {
                verify_all_text(&report, seconds, out)
            })?;
            Ok(report.ok())
        }
    }
}

/// `verify --all` for people: each break, a rewritten anchor, then one summary line.
fn verify_all_text(
    report: &projections::audit::VerifyAllReport,
    seconds: f64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for broken in &report.broken {
        writeln!(
            out,
            "account {}: broken at sequence {} ({} events checked)",
            broken.account_id,
            broken
                .verification
                .first_broken_sequence
                .map_or_else(|| "?".to_owned(), |s| s.to_string()),
            broken.verification.events_checked
        )?;
    }
    match &report.anchor {
        Some(anchor) if !report.anchor_intact => writeln!(
            out,
            "anchor #{}: its stored heads no longer fold into its root hash {}",
            anchor.id, anchor.root_hash
        )?,
        _ => {}
    }
    writeln!(
        out,
        "{} streams, {} events verified in {seconds:.2}s ({:.0} events/s): {}; {}",
        report.streams,
        report.events,
        report.events as f64 / seconds.max(1e-9),
        if report.broken.is_empty() {
            "no broken stream".to_owned()
        } else {
            format!("{} broken", report.broken.len())
        },
        match &report.anchor {
            None => "no anchor yet".to_owned(),
            Some(a) => format!(
                "latest anchor #{} at {} ({})",
                a.id,
                a.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                if report.anchor_intact {
                    "intact"
                } else {
                    "NOT intact"
                }
            ),
        }
    )
}

/// `accountd audit export --since T --until T`: ndjson to `out` (or the same lines as one JSON
/// document), the summary to stderr.
pub async fn export(
    audit: &Audit<StoreAuditLog>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<projections::audit::ExportSummary> {
    let summary = match format {
        Format::Ndjson => audit.export(since, until, out).await?,
        Format::Json => {
            // The root hash covers the ndjson lines: export them, then wrap them.
            let mut lines = Vec::new();
            let summary = audit.export(since, until, &mut lines).await?;
            let mut values = lines
                .split(|b| *b == b'\n')
                .filter(|line| !line.is_empty())
                .map(serde_json::from_slice::<Value>)
                .collect::<Result<Vec<_>, _>>()?;
            let closing = values.pop().unwrap_or(Value::Null);
            serde_json::to_writer_pretty(
                &mut *out,
                &json!({"events": values, "summary": closing}),
            )?;
            out.write_all(b"\n")?;
            summary
        }
        Format::Text => anyhow::bail!("an export is ndjson or json (--format ndjson|json)"),
    };
    eprintln!(
        "exported {} events; root hash {}",
        summary.events, summary.root_hash
    );
    Ok(summary)
}
