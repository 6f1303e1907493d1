//! The keys behind codes, tokens and sealed copies.
//!
//! - Codes: HMAC-SHA256 under the current key, bound to owner, purpose, target and code id.
//! - Reset tokens: 256 random bits, URL-safe base64; stored as plain SHA-256 (a token is
//!   already unguessable, so no key is needed, and a rotated key cannot orphan a live link).
//! - Sealed copies: XChaCha20-Poly1305 with a random nonce, tagged with the key id. Older keys
//!   stay in the ring so values sealed before a rotation remain readable.
//! - Decoys: a keyed hash of the input, so a decoy mask is stable and unpredictable.

use std::collections::HashMap;
use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use domain::values::VerificationCode;
use domain::{Digest, Sealed, Secrets};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// A 32-byte key and its id (the first 8 hex digits of its SHA-256).
#[derive(Clone)]
struct Key {
    id: String,
    bytes: [u8; 32],
}

impl Key {
    fn new(bytes: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(bytes)[..4]);
        Self { id, bytes }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a secret key must be standard base64 of exactly 32 bytes")]
    Malformed,
}

/// The current key and the older ones still accepted for opening sealed values.
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    older: HashMap<String, Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.id)
            .field("older", &self.older.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Decodes `ACCOUNTD_SECRET_KEY`: standard base64 (padding optional) of 32 bytes.
pub fn decode_key(encoded: &str) -> Result<[u8; 32], KeyError> {
    let encoded = encoded.trim();
    let bytes = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| KeyError::Malformed)?;
    bytes.try_into().map_err(|_| KeyError::Malformed)
}

/// A fresh random key, standard base64 (what the embedded store writes to its key file).
pub fn generate_key() -> String {
    STANDARD.encode(rand::rng().random::<[u8; 32]>())
}

impl Keyring {
    pub fn new(current: [u8; 32], older: impl IntoIterator<Item = [u8; 32]>) -> Self {
        let older = older
            .into_iter()
            .map(Key::new)
            .map(|k| (k.id.clone(), k))
            .collect();
        Self {
            current: Key::new(current),
            older,
        }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        <HmacSha256 as Mac>::new_from_slice(&self.current.bytes).expect("HMAC takes any key length")
    }

    /// A keyed hash of `input` under a domain-separating `label` (decoys, verification ids).
    pub fn keyed_hash(&self, label: &str, input: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// Opens a sealed value with the key it names. `None` when the key is unknown or the
    /// ciphertext was altered.
    pub fn open(&self, sealed: &Sealed) -> Option<String> {
        let key = if sealed.key_id == self.current.id {
            &self.current
        } else {
            self.older.get(&sealed.key_id)?
        };
        let raw = STANDARD.decode(&sealed.ciphertext).ok()?;
        if raw.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new((&key.bytes).into());
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), aad(&key.id, ciphertext))
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// The key id is authenticated along with the ciphertext, so a sealed value cannot be
/// relabelled.
fn aad<'a>(key_id: &'a str, msg: &'a [u8]) -> chacha20poly1305::aead::Payload<'a, 'a> {
    chacha20poly1305::aead::Payload {
        msg,
        aad: key_id.as_bytes(),
    }
}

impl Secrets for Keyring {
    fn new_code(&self) -> VerificationCode {
        let n = rand::rng().random_range(0..1_000_000u32);
        VerificationCode::from_number(n).expect("below one million")
    }

    fn code_digest(&self, binding: &str, code: &VerificationCode) -> Digest {
        let mut mac = self.mac();
        mac.update(b"code\0");
        mac.update(binding.as_bytes());
        mac.update(&[0]);
        mac.update(code.as_str().as_bytes());
        Digest::from_hex(hex::encode(mac.finalize().into_bytes()))
    }

    fn new_reset_token(&self) -> domain::services::ResetToken {
        domain::services::ResetToken::new(URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>()))
    }

    fn token_digest(&self, token: &str) -> Digest {
        Digest::from_hex(hex::encode(Sha256::digest(token.as_bytes())))
    }

    fn seal(&self, plaintext: &str) -> Sealed {
        let cipher = XChaCha20Poly1305::new((&self.current.bytes).into());
        let nonce: [u8; 24] = rand::rng().random();
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                aad(&self.current.id, plaintext.as_bytes()),
            )
            .expect("XChaCha20-Poly1305 encryption of a short message cannot fail");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&ciphertext);
        Sealed {
            key_id: self.current.id.clone(),
            ciphertext: STANDARD.encode(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(seed: u8) -> Keyring {
        Keyring::new([seed; 32], [])
    }

    #[test]
    fn a_sealed_value_opens_to_what_was_sealed_and_hides_it() {
        let ring = ring(1);
        let sealed = ring.seal("123456");
        assert!(!sealed.ciphertext.contains("123456"));
        assert_eq!(ring.open(&sealed).as_deref(), Some("123456"));
    }

    #[test]
    fn values_sealed_before_a_rotation_stay_readable() {
        let old = ring(1);
        let sealed = old.seal("token");
        let rotated = Keyring::new([2; 32], [[1; 32]]);
        assert_ne!(rotated.current_key_id(), sealed.key_id);
        assert_eq!(rotated.open(&sealed).as_deref(), Some("token"));
        assert_eq!(
            ring(2).open(&sealed),
            None,
            "without the old key it cannot open"
        );
    }

    #[test]
    fn an_altered_or_relabelled_sealed_value_does_not_open() {
        let ring = Keyring::new([1; 32], [[3; 32]]);
        let mut sealed = ring.seal("secret");
        let mut raw = STANDARD.decode(&sealed.ciphertext).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let altered = Sealed {
            key_id: sealed.key_id.clone(),
            ciphertext: STANDARD.encode(&raw),
        };
        assert_eq!(ring.open(&altered), None);
        sealed.key_id = Key::new([3; 32]).id;
        assert_eq!(ring.open(&sealed), None);
    }

    #[test]
    fn code_digests_depend_on_the_key_the_binding_and_the_code() {
        let code = VerificationCode::parse("123456").unwrap();
        let other = VerificationCode::parse("123457").unwrap();
        let a = ring(1).code_digest("b", &code);
        assert_eq!(a, ring(1).code_digest("b", &code));
        assert_ne!(a, ring(2).code_digest("b", &code));
        assert_ne!(a, ring(1).code_digest("c", &code));
        assert_ne!(a, ring(1).code_digest("b", &other));
        assert!(!a.as_hex().contains("123456"));
    }

    #[test]
    fn reset_tokens_carry_256_bits_and_are_url_safe() {
        let ring = ring(1);
        let a = ring.new_reset_token();
        let b = ring.new_reset_token();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose_secret()).unwrap().len(), 32);
        assert!(a
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(ring.token_digest(a.expose_secret()).as_hex().len(), 64);
    }

    #[test]
    fn keys_decode_from_standard_base64_with_or_without_padding() {
        let encoded = generate_key();
        assert_eq!(decode_key(&encoded).unwrap().len(), 32);
        assert_eq!(
            decode_key(encoded.trim_end_matches('=')).unwrap(),
            decode_key(&encoded).unwrap()
        );
        assert_eq!(decode_key("c2hvcnQ="), Err(KeyError::Malformed));
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let ring = ring(1);
        let codes: std::collections::HashSet<String> = (0..50)
            .map(|_| ring.new_code().as_str().to_owned())
            .collect();
        assert!(codes.len() > 40);
        assert!(codes.iter().all(|c| c.len() == 6));
    }
}
