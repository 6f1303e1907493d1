//! The profile read model: rows of `profiles` and `servers`, folded a batch at a time (one load
//! and one save per batch; the statements are the stores', in `crate::store`).

mod row;

use std::collections::{BTreeSet, HashMap};

use domain::account::ACCOUNT_AGGREGATE_TYPE;
use domain::stored::{from_payload, RecordedEvent};
use domain::AccountEvent;
use tracing::warn;

pub use row::{ProfileRow, ServerRow};

use crate::db::ReadError;
use crate::store::ProjectionTx;

/// The tables a projection writes: the live ones, or the copies a rebuild fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub profiles: &'static str,
    pub servers: &'static str,
}

impl Tables {
    pub const LIVE: Tables = Tables {
        profiles: "profiles",
        servers: "servers",
    };
    pub const REBUILD: Tables = Tables {
        profiles: "profiles_rebuild",
        servers: "servers_rebuild",
    };
}

/// Applies a batch of the log to the profile tables inside `tx`: one load and one save for the
/// batch, whatever its size.
pub(crate) async fn apply_in(
    tx: &mut dyn ProjectionTx,
    tables: Tables,
    events: &[RecordedEvent],
) -> Result<(), ReadError> {
    let ids: Vec<String> = events
        .iter()
        .filter(|e| e.aggregate_type == ACCOUNT_AGGREGATE_TYPE)
        .map(|e| e.aggregate_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut rows = tx.load(tables, &ids).await?;
    let changed = fold(&mut rows, events)?;
    let changed: Vec<&ProfileRow> = changed.iter().filter_map(|id| rows.get(id)).collect();
    tx.save(tables, &changed).await
}

/// Folds the account events of a batch into `rows`; returns the ids of the rows that changed.
pub(crate) fn fold(
    rows: &mut HashMap<String, ProfileRow>,
    events: &[RecordedEvent],
) -> Result<BTreeSet<String>, ReadError> {
    let mut changed = BTreeSet::new();
    for recorded in events
        .iter()
        .filter(|e| e.aggregate_type == ACCOUNT_AGGREGATE_TYPE)
    {
        let event: AccountEvent = from_payload(
            &recorded.event_type,
            &recorded.event_version,
            recorded.payload.clone(),
        )
        .map_err(|source| ReadError::Corrupt {
            aggregate_id: recorded.aggregate_id.clone(),
            sequence: recorded.sequence,
            source,
        })?;
        let sequence = i64::try_from(recorded.sequence).unwrap_or(i64::MAX);
        let id = &recorded.aggregate_id;
        let applied = match rows.get_mut(id) {
            Some(row) => row.apply(sequence, &event),
            None => match ProfileRow::registered(id, sequence, &event) {
                Some(row) => {
                    rows.insert(id.clone(), row);
                    true
                }
                None => {
                    warn!(account = %id, sequence, "event for an account without a profile row");
                    false
                }
            },
        };
        if applied {
            changed.insert(id.clone());
        }
    }
    Ok(changed)
}
