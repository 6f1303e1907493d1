//! Where the write side and the read side meet: the write side's store serves as the read
//! side's event log, and both share one database pool.

use std::future::Future;

use commands::Store;
use domain::stored::{Checkpoint, RecordedEvent};
use projections::{EventLog, ReadStore};

/// The event log of the write side, as the read side's port.
#[derive(Clone, Debug)]
pub struct StoreLog(pub Store);

impl EventLog for StoreLog {
    fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, String>> + Send {
        let store = self.0.clone();
        async move {
            store
                .read_after(checkpoint, limit)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// The read store on the same database as `store`.
pub fn read_store(store: &Store) -> ReadStore {
    match store {
        Store::Postgres(pool) => ReadStore::Postgres(pool.clone()),
        Store::Sqlite(pool) => ReadStore::Sqlite(pool.clone()),
    }
}
