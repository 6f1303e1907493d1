//! Idempotency-Key records (SPEC §3), Stripe-style: a POST with a key runs once per caller,
//! method and path for 24 hours; a retry with the same body gets the recorded response, another
//! body is refused, and one that arrives while the first is running is told it is in flight.
//!
//! A record that is in flight carries a lease: the request's own deadline (the gateway's request
//! timeout). A request that died mid-flight (process killed, database gone) leaves its record
//! behind; once the lease lapses, a retry with the same body takes the record over and runs the
//! request again. That is safe because the commands themselves are guarded (claims, sequences,
//! one-time codes): running one twice cannot apply it twice. A retry with another body still
//! answers "reused" rather than taking over.
//!
//! Nothing secret is kept in clear (issue 13): the scope (caller, method, path with any reset
//! token, key) is stored as its SHA-256; the request body as a keyed hash (it may hold a
//! password, which a plain hash would expose to guessing); the recorded response body sealed
//! with the keyring's AEAD, because it must be replayed verbatim and may carry a bearer token
//! (`POST /v1/sessions`) or personal data. After a key rotation, older keys still open it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{Sealed, Secrets};
use sha2::{Digest as _, Sha256};

use crate::secrets::Keyring;
use crate::store::{Store, StoreError};

/// How long a key is remembered.
const RETENTION: chrono::Duration = chrono::Duration::hours(24);

/// The stored form of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRow {
    /// The keyed hash of the first request's body.
    pub request_digest: String,
    /// The recorded outcome; `None` while in flight.
    pub response: Option<StoredResponse>,
}

/// The stored columns of a record, in the order each dialect selects them: request digest,
/// status, content type, body key id, sealed body.
pub type StoredColumns = (
    String,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl IdempotencyRow {
    /// Decodes [`StoredColumns`] (the one decoder of both dialects).
    pub fn from_columns(
        (request_digest, status, content_type, key_id, ciphertext): StoredColumns,
    ) -> Self {
        let response = match (status, key_id, ciphertext) {
            (Some(status), Some(key_id), Some(ciphertext)) => Some(StoredResponse {
                status: u16::try_from(status).unwrap_or_default(),
                content_type: content_type.unwrap_or_default(),
                body: Sealed { key_id, ciphertext },
            }),
            _ => None,
        };
        Self {
            request_digest,
            response,
        }
    }
}

/// A recorded response: its body sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Sealed,
}

/// The records, keyed by the scope digest. `until` (the lease) also fences the owner: a request
/// whose record was taken over after its lease lapsed can no longer record or forget it.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Deletes the record of `scope` if it was created before `before`.
    async fn prune(&self, scope: &str, before: DateTime<Utc>) -> Result<(), StoreError>;
    /// Inserts an in-flight record; `false` when `scope` has one.
    async fn insert(
        &self,
        scope: &str,
        request_digest: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Takes over the in-flight record of `scope` for the same body whose lease ended by
    /// `now`, leasing it until `until`; `false` when there is none.
    async fn take_over(
        &self,
        scope: &str,
        request_digest: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn get(&self, scope: &str) -> Result<Option<IdempotencyRow>, StoreError>;
    /// Records the outcome of the request holding the lease `until`.
    async fn record(
        &self,
        scope: &str,
        until: DateTime<Utc>,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;
    /// Deletes the in-flight record of the request holding the lease `until`.
    async fn forget(&self, scope: &str, until: DateTime<Utc>) -> Result<(), StoreError>;
}

/// An idempotent request, as the gateway sees it.
#[derive(Debug, Clone, Copy)]
pub struct IdempotentRequest<'a> {
    /// Who asks (a bearer token's hash, or the client IP).
    pub caller: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub key: &'a str,
    pub body: &'a [u8],
}

/// What a request with a key may do.
#[derive(Debug)]
pub enum Begin {
    /// Run it, then [`Idempotency::finish`] or [`Idempotency::forget`] with this lease.
    Run(Lease),
    /// Answer with the recorded response.
    Replay(Replayed),
    /// The first request is still running (its lease has not lapsed).
    InFlight,
    /// The key was used with another body.
    OtherBody,
}

/// The right to run a request and record its outcome.
#[derive(Debug, Clone)]
pub struct Lease {
    scope: String,
    until: DateTime<Utc>,
}

/// A recorded response, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Idempotency records at one instant (the service's clock).
pub struct Idempotency<'a> {
    store: &'a Store,
    keyring: &'a Keyring,
    now: DateTime<Utc>,
}

impl<'a> Idempotency<'a> {
    pub fn new(store: &'a Store, keyring: &'a Keyring, now: DateTime<Utc>) -> Self {
        Self {
            store,
            keyring,
            now,
        }
    }

    /// Starts `request`, in flight for at most `lease` (its deadline).
    pub async fn begin(
        &self,
        request: &IdempotentRequest<'_>,
        lease: std::time::Duration,
    ) -> Result<Begin, StoreError> {
        let records = self.store.idempotency();
        let scope = scope_digest(request);
        let digest = hex::encode(self.keyring.keyed_hash("idempotency-body", request.body));
        let until = self.now + chrono::Duration::from_std(lease).unwrap_or(RETENTION);
        records.prune(&scope, self.now - RETENTION).await?;
        if records.insert(&scope, &digest, self.now, until).await?
            || records.take_over(&scope, &digest, self.now, until).await?
        {
            return Ok(Begin::Run(Lease { scope, until }));
        }
        let Some(row) = records.get(&scope).await? else {
            // Forgotten in between (the first request failed): the client may retry.
            return Ok(Begin::InFlight);
        };
        if row.request_digest != digest {
            return Ok(Begin::OtherBody);
        }
        let Some(response) = row.response else {
            return Ok(Begin::InFlight);
        };
        match self.keyring.open(&response.body) {
            Some(body) => Ok(Begin::Replay(Replayed {
                status: response.status,
                content_type: response.content_type,
                body: body.into_bytes(),
            })),
            // Sealed under a key no longer in the ring: the record cannot be replayed, so it is
            // dropped and the request runs again (guarded like any retry, see above).
            None => {
                records.prune(&scope, DateTime::<Utc>::MAX_UTC).await?;
                let fresh = records.insert(&scope, &digest, self.now, until).await?;
                Ok(if fresh {
                    Begin::Run(Lease { scope, until })
                } else {
                    Begin::InFlight
                })
            }
        }
    }

    /// Records the response of the request holding `lease`. A body that is not UTF-8 cannot be
    /// sealed as text, so its record is forgotten instead (a retry runs again).
    pub async fn finish(
        &self,
        lease: &Lease,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let Ok(text) = std::str::from_utf8(body) else {
            return self.forget(lease).await;
        };
        let response = StoredResponse {
            status,
            content_type: content_type.to_owned(),
            body: self.keyring.seal(text),
        };
        let records = self.store.idempotency();
        records.record(&lease.scope, lease.until, &response).await
    }

    /// Forgets the record of the request holding `lease` (a server failure: retry may run).
    pub async fn forget(&self, lease: &Lease) -> Result<(), StoreError> {
        self.store
            .idempotency()
            .forget(&lease.scope, lease.until)
            .await
    }
}

/// The SHA-256 of the scope, each part length-prefixed so that no two scopes share a digest.
pub fn scope_digest(request: &IdempotentRequest<'_>) -> String {
    let mut hasher = Sha256::new();
    for part in [request.caller, request.method, request.path, request.key] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}
