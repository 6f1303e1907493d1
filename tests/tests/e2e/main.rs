//! End-to-end tests of every flow of SPEC §3, through HTTP, each on PostgreSQL and on the
//! embedded store. One binary (it links once and runs its tests in parallel), one file per flow.
//!
//! Codes and reset tokens are read with `TestApp::code_for` / `TestApp::reset_token_for`
//! (see the harness): the only place that changes when the outbox is read instead.

mod account_recovery;
mod audit;
mod audit_cli;
mod concurrency;
mod contact;
mod delivery;
mod hardening;
mod hygiene;
mod internal;
mod login_email;
mod new_sign_in;
mod operations;
mod password_change;
mod password_reset;
mod protection;
mod recovery_values;
mod secrets;
mod sessions;
mod sign_in;
mod sign_up;
mod step_up;

/// A six-digit code that is not `code` (for "a wrong code").
pub fn wrong_code(code: &str) -> String {
    let mut digits: Vec<u8> = code.bytes().collect();
    let last = digits.last_mut().expect("a code has digits");
    *last = b'0' + (*last - b'0' + 1) % 10;
    String::from_utf8(digits).expect("digits are ASCII")
}

/// Whether `masked` has the shape of a masked Chinese mobile, `+86 1dd****dddd`.
pub fn is_masked_chinese_mobile(masked: &str) -> bool {
    let Some(rest) = masked.strip_prefix("+86 1") else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() == 10
        && bytes[..2].iter().all(u8::is_ascii_digit)
        && &bytes[2..6] == b"****"
        && bytes[6..].iter().all(u8::is_ascii_digit)
}
