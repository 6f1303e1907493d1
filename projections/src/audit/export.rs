//! `accountd audit export --since T --until T`: every account event whose `occurred_at` is in
//! `[since, until)`, in commit order, as ndjson, closed by a line holding the root hash of what
//! was exported.
//!
//! # Lines
//! Each event is one line: the canonical JSON (keys sorted, no whitespace) of the audit
//! envelope plus `account_id`:
//! `{"account_id","chain_hash","metadata","occurred_at","payload","sequence","type","version"}`,
//! redacted as every audit output is. The last line is
//! `{"events":N,"root_hash":"<64 hex>","since":"…","until":"…"}`.
//!
//! # Root hash
//! `h0` is 64 zeros; for the i-th event line `Li` (its exact UTF-8 bytes, without the newline)
//! `hi = lowercase hex SHA-256(h(i-1) ‖ Li)`, with `h(i-1)` taken as its 64 ASCII hex
//! characters; `root_hash = hN`. Anyone can recompute it from the file; a line edited, dropped,
//! added or moved changes it. (Payloads are redacted, so the per-event chain hashes cannot be
//! recomputed from an export; they are shown as stored, to be compared with the store or with
//! published anchors.)

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::chain::{canonical_json, GENESIS};
use domain::stored::Checkpoint;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{Audit, AuditError, AuditEvent, AuditLog};

/// How many events one read of an export takes.
const EXPORT_PAGE: u32 = 5_000;

/// What an export wrote (also its last line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub events: u64,
    pub root_hash: String,
}

/// The root-hash chain over exported lines.
#[derive(Debug, Clone)]
pub struct LineChain(String);

impl Default for LineChain {
    fn default() -> Self {
        Self(GENESIS.to_owned())
    }
}

impl LineChain {
    /// Folds one line (without its newline) into the chain.
    pub fn push(&mut self, line: &str) {
        let mut hasher = Sha256::new();
        hasher.update(self.0.as_bytes());
        hasher.update(line.as_bytes());
        self.0 = hex::encode(hasher.finalize());
    }

    pub fn root(&self) -> &str {
        &self.0
    }
}

impl<L: AuditLog> Audit<L> {
    /// Writes the export of `[since, until)` to `out`.
    pub async fn export<W: Write>(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        out: &mut W,
    ) -> Result<ExportSummary, AuditError> {
        if since >= until {
            return Err(AuditError::InvalidRange);
        }
        let mut chain = LineChain::default();
        let mut events = 0u64;
        let mut after = Checkpoint::default();
        loop {
            let page = self
                .log
                .occurred_between(since, until, after, EXPORT_PAGE)
                .await
                .map_err(AuditError::Log)?;
            let full = page.len() == EXPORT_PAGE as usize;
            for event in page {
                after = event.checkpoint;
                let account_id = event.aggregate_id.clone();
                let mut line =
                    serde_json::to_value(AuditEvent::from_recorded(event)).map_err(|source| {
                        AuditError::Corrupt {
                            aggregate_id: account_id.clone(),
                            sequence: 0,
                            source,
                        }
                    })?;
                if let Value::Object(map) = &mut line {
                    map.insert("account_id".into(), Value::String(account_id));
                }
                let line = canonical_json(&line);
                chain.push(&line);
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
                events += 1;
            }
            if !full {
                break;
            }
        }
        let summary = ExportSummary {
            events,
            root_hash: chain.root().to_owned(),
        };
        let last = json!({
            "events": summary.events,
            "root_hash": summary.root_hash,
            "since": since.to_rfc3339_opts(SecondsFormat::Micros, true),
            "until": until.to_rfc3339_opts(SecondsFormat::Micros, true),
        });
        out.write_all(canonical_json(&last).as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_chain_starts_at_zeros_and_hashes_the_previous_root_then_the_line() {
        let mut chain = LineChain::default();
        assert_eq!(chain.root(), GENESIS);
        chain.push(r#"{"a":1}"#);
        let first = hex::encode(Sha256::digest(format!("{GENESIS}{}", r#"{"a":1}"#)));
        assert_eq!(chain.root(), first);
        chain.push(r#"{"b":2}"#);
        let second = hex::encode(Sha256::digest(format!("{first}{}", r#"{"b":2}"#)));
        assert_eq!(chain.root(), second);
    }

    #[test]
    fn reordered_lines_give_another_root() {
        let mut a = LineChain::default();
        a.push("x");
        a.push("y");
        let mut b = LineChain::default();
        b.push("y");
        b.push("x");
        assert_ne!(a.root(), b.root());
    }
}
