//! The per-stream hash chain of SPEC §4: each event's `chain_hash` is the lowercase hex SHA-256
//! of the previous event's `chain_hash` (64 zeros for the first) followed by the canonical JSON
//! (keys sorted, no whitespace) of `{"metadata", "payload", "type", "version"}`, where metadata
//! is every metadata field except `chain_hash`.
//!
//! Canonicalisation is done here, not left to `serde_json`'s map order, so that a feature of
//! another crate (`preserve_order`) can never change a hash.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The `chain_hash` before the first event of a stream.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The metadata key holding the chain hash.
pub const CHAIN_HASH_KEY: &str = "chain_hash";

/// Writes `value` as canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The chain hash of one event given the previous one. `metadata` may contain `chain_hash`;
/// it is left out of the hash.
pub fn chain_hash(
    previous: &str,
    event_type: &str,
    event_version: &str,
    payload: &Value,
    metadata: &Value,
) -> String {
    let mut metadata = metadata.clone();
    if let Value::Object(map) = &mut metadata {
        map.remove(CHAIN_HASH_KEY);
    }
    let body = serde_json::json!({
        "metadata": metadata,
        "payload": payload,
        "type": event_type,
        "version": event_version,
    });
    let mut hasher = Sha256::new();
    hasher.update(previous.as_bytes());
    hasher.update(canonical_json(&body).as_bytes());
    hex::encode(hasher.finalize())
}

/// One stored event as verification sees it.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    pub sequence: u64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a Value,
    pub metadata: &'a Value,
}

/// What verifying a stream found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub events_checked: u64,
    /// The first sequence whose event is missing, out of place or altered.
    pub first_broken_sequence: Option<u64>,
    /// The chain hash of the last good event.
    pub head: String,
}

/// Recomputes a stream's chain from its events in stored order. Sequences must run 1, 2, 3…:
/// a gap (deleted event) or a repeat is a break at the first sequence that is not where it
/// should be.
pub fn verify<'a>(events: impl IntoIterator<Item = Link<'a>>) -> Verification {
    let mut previous = GENESIS.to_owned();
    let mut checked = 0;
    for (index, link) in events.into_iter().enumerate() {
        let expected_sequence = index as u64 + 1;
        checked += 1;
        let stored = link
            .metadata
            .get(CHAIN_HASH_KEY)
            .and_then(Value::as_str)
            .unwrap_or_default();
        let computed = chain_hash(
            &previous,
            link.event_type,
            link.event_version,
            link.payload,
            link.metadata,
        );
        if link.sequence != expected_sequence || stored != computed {
            return Verification {
                events_checked: checked,
                first_broken_sequence: Some(expected_sequence.min(link.sequence)),
                head: previous,
            };
        }
        previous = computed;
    }
    Verification {
        events_checked: checked,
        first_broken_sequence: None,
        head: previous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stream(n: u64) -> Vec<(u64, String, Value, Value)> {
        let mut previous = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let payload = json!({"n": seq, "b": [1, {"z": 1, "a": 2}]});
                let mut metadata = json!({"event_id": format!("e{seq}"), "actor": "test"});
                let hash = chain_hash(&previous, "Thing", "1", &payload, &metadata);
                metadata[CHAIN_HASH_KEY] = Value::String(hash.clone());
                previous = hash;
                (seq, "Thing".to_owned(), payload, metadata)
            })
            .collect()
    }

    fn check(events: &[(u64, String, Value, Value)]) -> Verification {
        verify(events.iter().map(|(sequence, t, p, m)| Link {
            sequence: *sequence,
            event_type: t,
            event_version: "1",
            payload: p,
            metadata: m,
        }))
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let value = json!({"b": 1, "a": {"d": [true, null], "c": "x y"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"x y","d":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn an_untouched_stream_verifies() {
        let v = check(&stream(5));
        assert_eq!(v.first_broken_sequence, None);
        assert_eq!(v.events_checked, 5);
    }

    #[test]
    fn an_edited_payload_breaks_the_chain_at_that_event() {
        let mut events = stream(5);
        events[2].2["n"] = json!(99);
        assert_eq!(check(&events).first_broken_sequence, Some(3));
    }

    #[test]
    fn edited_metadata_breaks_the_chain_at_that_event() {
        let mut events = stream(5);
        events[3].3["actor"] = json!("someone else");
        assert_eq!(check(&events).first_broken_sequence, Some(4));
    }

    #[test]
    fn a_deleted_middle_event_is_reported_at_its_sequence() {
        let mut events = stream(5);
        events.remove(1);
        assert_eq!(check(&events).first_broken_sequence, Some(2));
    }

    #[test]
    fn swapped_events_are_reported_at_the_first_out_of_place() {
        let mut events = stream(5);
        events.swap(1, 2);
        assert_eq!(check(&events).first_broken_sequence, Some(2));
    }

    #[test]
    fn a_forged_event_with_renumbered_sequences_breaks_the_chain() {
        let mut events = stream(4);
        let forged = (2, "Thing".to_owned(), json!({"n": 2}), events[1].3.clone());
        events.insert(1, forged);
        for (i, e) in events.iter_mut().enumerate() {
            e.0 = i as u64 + 1;
        }
        assert_eq!(check(&events).first_broken_sequence, Some(2));
    }
}
