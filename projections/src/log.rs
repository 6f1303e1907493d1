//! The port through which the read side reads the event log. The write side implements it
//! (`commands::Store::read_after`); the `accountd` binary wires the two, so neither crate
//! depends on the other.

use domain::PortError;
use std::future::Future;

use domain::stored::{Checkpoint, RecordedEvent};

pub trait EventLog: Send + Sync + 'static {
    /// Up to `limit` events after `checkpoint`, in commit order, never skipping one that
    /// commits late.
    fn read_after(
        &self,
        checkpoint: Checkpoint,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, PortError>> + Send;
}
