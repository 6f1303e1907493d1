//! Value objects: the strings of the outside world, parsed once into types that cannot hold a
//! wrong value.
//!
//! Every type here is a newtype with private fields, built only by `parse` (or `TryFrom<String>`,
//! which is the same parse). Each serializes as its canonical string and deserializes through
//! that same parse, so a value read back from an event, a projection or a request body is exactly
//! as trustworthy as one parsed from user input.
//!
//! # Layout
//!
//! - [`account_id`]: [`AccountId`], the 12-digit account number.
//! - [`mobile`]: [`Mobile`], a mobile phone number in E.164, its mask, and the decoy mask.
//! - [`email`]: [`Email`], an address with a lower-cased domain, and its mask.
//! - [`server_ip`]: [`ServerIp`], a unicast IPv4 or IPv6 address.
//! - [`code`]: [`VerificationCode`], six digits that never show up in `Debug` output.
//!
//! [`ValueError`] has one variant per rule; its messages are fit for an API error `detail` and
//! never repeat the rejected input (which may be personal data).

pub mod account_id;
pub mod code;
pub mod email;
pub mod mobile;
pub mod server_ip;

pub use account_id::AccountId;
pub use code::VerificationCode;
pub use email::Email;
pub use mobile::Mobile;
pub use server_ip::ServerIp;

/// Whether `c` may not appear in an identifier (an email, a mobile…): control characters (NUL,
/// CR, LF…), bidirectional embeddings, overrides, isolates and marks, and zero-width or invisible
/// formatting characters. They render as nothing or reorder text, so two identifiers that look
/// the same could differ, a header or log line could be split, and PostgreSQL refuses NUL in
/// text outright. Every parser of this module refuses them, so both stores hold the same values.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' // soft hyphen
                | '\u{061C}' // Arabic letter mark
                | '\u{180E}' // Mongolian vowel separator
                | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
                | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
                | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{FEFF}' // zero-width no-break space (BOM)
        )
}

/// Why a string was refused as a value object: one variant per rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not 12 ASCII digits, or outside `100000000001..=999999999999`.
    #[error("An account ID is a 12-digit number from 100000000001 to 999999999999.")]
    InvalidAccountId,
    /// Not a phone number at all, or one the numbering plan says cannot exist.
    #[error("The mobile number is not a valid phone number.")]
    InvalidMobile,
    /// A valid phone number, but not a mobile one (a landline, toll-free, premium-rate…).
    #[error("The phone number is not a mobile number.")]
    NotAMobileNumber,
    /// Not a syntactically valid email address.
    #[error("The email address is not valid.")]
    InvalidEmail,
    /// Not an IP address, or not a unicast one.
    #[error("The server IP is not a unicast IPv4 or IPv6 address.")]
    InvalidServerIp,
    /// Not exactly six digits.
    #[error("A verification code is exactly 6 digits.")]
    InvalidVerificationCode,
}
