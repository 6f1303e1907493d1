//! The envelope every audit output shows an event in (SPEC §3: `sequence, type, version,
//! occurred_at, payload, metadata, chain_hash`), and the redaction applied to it.
//!
//! Password hashes live in events but never leave the store through audit (SPEC §4); sealed
//! codes and tokens are for the notifier only. Codes and tokens are never stored in clear, but
//! redaction removes those keys too, at any depth, so that a future event carrying one by
//! mistake is not shown either. Keyed digests (`code_digest`, `token_digest`) stay: they cannot
//! be turned back into the secret and an auditor may need them to match a delivery.

use chrono::{DateTime, Utc};
use domain::chain::CHAIN_HASH_KEY;
use domain::stored::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Keys removed wherever they appear.
pub const REDACTED_KEYS: [&str; 9] = [
    "password_hash",
    "new_hash",
    "sealed_code",
    "sealed_token",
    "ciphertext",
    "code",
    "token",
    "password",
    "new_password",
];

/// Removes every [`REDACTED_KEYS`] member, and every member whose value is a sealed value (an
/// object with a `ciphertext`), from objects at any depth of `value`.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, member| {
                !REDACTED_KEYS.contains(&key.as_str()) && member.get("ciphertext").is_none()
            });
            map.values_mut().for_each(redact);
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// One event as audit shows it: payload and metadata redacted, the chain hash beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub sequence: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
    /// Actor, request id, client IP and user agent, event id, `occurred_at`; without the chain
    /// hash, which is shown beside it.
    pub metadata: Value,
    pub chain_hash: String,
}

impl AuditEvent {
    pub fn from_recorded(event: RecordedEvent) -> Self {
        let occurred_at = super::occurred_at(&event);
        let RecordedEvent {
            sequence,
            event_type,
            event_version,
            mut payload,
            mut metadata,
            ..
        } = event;
        let chain_hash = match &mut metadata {
            Value::Object(map) => match map.remove(CHAIN_HASH_KEY) {
                Some(Value::String(hash)) => hash,
                _ => String::new(),
            },
            _ => String::new(),
        };
        redact(&mut payload);
        redact(&mut metadata);
        Self {
            sequence,
            event_type,
            version: event_version,
            occurred_at,
            payload,
            metadata,
            chain_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_removes_secret_keys_at_every_depth() {
        let mut value = json!({
            "password_hash": "$argon2id$v=19$...",
            "keep": 1,
            "nested": {
                "code": "123456",
                "token": "abc",
                "list": [{"sealed_code": {"key_id": "k1", "ciphertext": "xyz"}, "other": true}],
                "deeper": {"new_hash": "$argon2id$", "password": "Secret#1", "new_password": "x"}
            },
            "sealed_token": {"key_id": "k1", "ciphertext": "zzz"}
        });
        redact(&mut value);
        assert_eq!(
            value,
            json!({
                "keep": 1,
                "nested": {"list": [{"other": true}], "deeper": {}}
            })
        );
    }

    #[test]
    fn a_sealed_value_under_any_name_is_removed() {
        let mut value =
            json!({"delivery": {"copy": {"key_id": "k1", "ciphertext": "abc"}}, "n": [1]});
        redact(&mut value);
        assert_eq!(value, json!({"delivery": {}, "n": [1]}));
    }

    #[test]
    fn digests_and_ordinary_values_are_kept() {
        let original = json!({"code_digest": "ab12", "token_digest": "cd34", "code_id": "c-1",
                              "target": "+8613800138000", "purpose": "contact"});
        let mut value = original.clone();
        redact(&mut value);
        assert_eq!(value, original);
    }

    #[test]
    fn the_envelope_moves_the_chain_hash_out_of_the_metadata_and_redacts_the_payload() {
        let event = RecordedEvent {
            checkpoint: Default::default(),
            aggregate_type: "Account".into(),
            aggregate_id: "100000000001".into(),
            sequence: 3,
            event_type: "PasswordChanged".into(),
            event_version: "1".into(),
            payload: json!({"password_hash": "$argon2id$x", "reason": "change",
                            "changed_at": "2026-11-26T10:00:00Z"}),
            metadata: json!({"event_id": "e", "occurred_at": "2026-11-26T10:00:00.000000Z",
                             "actor": "account:100000000001", "chain_hash": "ff"}),
            recorded_at: Default::default(),
        };
        let shown = AuditEvent::from_recorded(event);
        assert_eq!(shown.chain_hash, "ff");
        assert_eq!(shown.metadata.get("chain_hash"), None);
        assert_eq!(shown.payload.get("password_hash"), None);
        assert_eq!(shown.payload["reason"], "change");
        assert_eq!(shown.occurred_at.to_rfc3339(), "2026-11-26T10:00:00+00:00");
        let json = serde_json::to_value(&shown).unwrap();
        assert_eq!(json["type"], "PasswordChanged");
        assert_eq!(json["version"], "1");
    }
}
