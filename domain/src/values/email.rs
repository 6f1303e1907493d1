//! [`Email`]: an email address as the customer typed it, made comparable.
//!
//! Guarantees:
//!
//! - one `local@domain` address, surrounding whitespace trimmed, checked by `email_address`
//!   (RFC 5321/5322 dot-atom syntax; Unicode letters allowed as in SMTPUTF8);
//! - no display name (`Ann <ann@example.com>`), no quoted local part (`"a b"@example.com`), no
//!   domain literal (`a@[192.0.2.1]`): forms a console never needs and mail relays treat badly;
//! - the domain has at least two labels (`example.com`, not `localhost`), each made of letters,
//!   digits and inner hyphens, and its last label is not all digits (not an IP address);
//! - at most 254 bytes in all and 64 in the local part;
//! - the domain is lower-cased; the local part is kept exactly as typed and compared exactly,
//!   so `A@x.com` and `a@x.com` differ while `a@X.COM` and `a@x.com` are the same value.
//!
//! [`Email::masked`] shows the first and last characters of the local part and always hides at
//! least one.

use std::fmt;

use email_address::{EmailAddress, Options};
use serde::{Deserialize, Serialize};

use super::ValueError;

/// A syntactically valid email address; see the module docs for what it guarantees.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email {
    /// `local@domain`, the domain lower-cased.
    address: String,
    /// Byte index of the `@` that ends the local part, kept so the parts are lent, not searched.
    at: usize,
}

impl Email {
    /// The longest address accepted, in bytes (RFC 5321 path limit less the angle brackets).
    pub const MAX_LEN: usize = 254;
    /// The longest local part accepted, in bytes (RFC 5321).
    pub const MAX_LOCAL_LEN: usize = 64;

    /// Trims `input`, lower-cases its domain and checks the syntax.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let trimmed = input.trim();
        if trimmed.len() > Self::MAX_LEN || trimmed.chars().any(super::is_hidden_or_control) {
            return Err(ValueError::InvalidEmail);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(ValueError::InvalidEmail)?;
        let domain = domain.to_lowercase();
        // Lower-casing can lengthen a domain and, for a handful of characters, is not
        // idempotent; requiring a fixed point keeps `parse(as_str())` equal to the value.
        let plausible = !local.starts_with('"')
            && local.len() <= Self::MAX_LOCAL_LEN
            && local.len() + 1 + domain.len() <= Self::MAX_LEN
            && domain.to_lowercase() == domain
            && is_host_name(&domain);
        if !plausible {
            return Err(ValueError::InvalidEmail);
        }
        let address = format!("{local}@{domain}");
        let options = Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            allow_long_local_parts: false,
        };
        EmailAddress::parse_with_options(&address, options)
            .map_err(|_| ValueError::InvalidEmail)?;
        Ok(Self {
            address,
            at: local.len(),
        })
    }

    /// The whole address, domain lower-cased.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part before the `@`, exactly as typed.
    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// The part after the `@`, lower-cased.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// `j***n@example.com`: the first and last characters of the local part around exactly
    /// three stars. At least one character is always hidden, so a local part of two characters
    /// shows only its first (`j***@example.com`) and one of one character shows none
    /// (`***@example.com`). Counts characters, not bytes.
    pub fn masked(&self) -> String {
        let local: Vec<char> = self.local_part().chars().collect();
        let (first, last) = match local.as_slice() {
            [] | [_] => (None, None),
            [first, _] => (Some(*first), None),
            [first, .., last] => (Some(*first), Some(*last)),
        };
        let mut masked = String::with_capacity(self.address.len() + 5);
        masked.extend(first);
        masked.push_str("***");
        masked.extend(last);
        masked.push('@');
        masked.push_str(self.domain());
        masked
    }
}

/// Labels of letters, digits and inner hyphens, the last one not all digits.
/// (`email_address` already checks label count, length, and the first and last characters.)
fn is_host_name(domain: &str) -> bool {
    let labels_ok = domain
        .split('.')
        .all(|label| label.chars().all(|c| c.is_alphanumeric() || c == '-'));
    let top_level_ok = domain
        .rsplit('.')
        .next()
        .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()));
    labels_ok && top_level_ok
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl TryFrom<String> for Email {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.address
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.address
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    #[test]
    fn a_plain_address_is_accepted_and_split() {
        let e = email("john@example.com");
        assert_eq!(e.as_str(), "john@example.com");
        assert_eq!(e.local_part(), "john");
        assert_eq!(e.domain(), "example.com");
        assert_eq!(e.to_string(), "john@example.com");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(email("  john@example.com\t\n").as_str(), "john@example.com");
    }

    #[test]
    fn the_domain_is_lower_cased() {
        let e = email("john@Example.COM");
        assert_eq!(e.as_str(), "john@example.com");
        assert_eq!(e, email("john@example.com"));
    }

    #[test]
    fn the_local_part_is_kept_as_typed_and_compared_exactly() {
        let upper = email("John.Doe@example.com");
        assert_eq!(upper.local_part(), "John.Doe");
        assert_ne!(email("A@x.com"), email("a@x.com"));
        assert_eq!(email("a@X.COM"), email("a@x.com"));
    }

    #[test]
    fn common_real_world_forms_are_accepted() {
        for input in [
            "first.last+tag@sub.example.co.uk",
            "o'brien@example.ie",
            "user_name-1@example-host.org",
            "x@a1.io",
            "1234@163.com",
            "用户@例子.广告",
            "josé@exämple.com",
        ] {
            assert!(Email::parse(input).is_ok(), "{input}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for input in [
            "",
            "   ",
            "john",
            "john.example.com",
            "@example.com",
            "john@",
            "john@@example.com",
            "jo@hn@example.com",
            "john@localhost",
            "john@example",
            "john@.example.com",
            "john@example..com",
            "john@example.com.",
            "john@-example.com",
            "john@example-.com",
            "john@exa_mple.com",
            "john@exa!mple.com",
            "john@192.0.2.1",
            "john@[192.0.2.1]",
            ".john@example.com",
            "john.@example.com",
            "jo..hn@example.com",
            "jo hn@example.com",
            "\"jo hn\"@example.com",
            "\"john\"@example.com",
            "John <john@example.com>",
            "<john@example.com>",
            "john@exa mple.com",
            "john@example.com\u{0}",
            "jo\u{7}hn@example.com",
        ] {
            assert_eq!(
                Email::parse(input),
                Err(ValueError::InvalidEmail),
                "{input:?}"
            );
        }
    }

    #[test]
    fn the_local_part_may_have_64_bytes_but_not_65() {
        let ok = format!("{}@example.com", "a".repeat(64));
        let too_long = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&ok).is_ok());
        assert_eq!(Email::parse(&too_long), Err(ValueError::InvalidEmail));
    }

    #[test]
    fn the_address_may_have_254_bytes_but_not_255() {
        // 64 + 1 + 189 = 254, with every label under the 63-byte limit.
        let domain_189 = format!(
            "{}.{}.{}.com",
            "b".repeat(61),
            "c".repeat(61),
            "d".repeat(61)
        );
        assert_eq!(domain_189.len(), 189);
        let ok = format!("{}@{domain_189}", "a".repeat(64));
        assert_eq!(ok.len(), 254);
        assert!(Email::parse(&ok).is_ok());
        let too_long = format!("{}@e{domain_189}", "a".repeat(64));
        assert_eq!(Email::parse(&too_long), Err(ValueError::InvalidEmail));
    }

    #[test]
    fn the_mask_shows_the_first_and_last_characters() {
        assert_eq!(email("john@example.com").masked(), "j***n@example.com");
        assert_eq!(email("abc@example.com").masked(), "a***c@example.com");
        assert_eq!(
            email("Very.Long.Name@EXAMPLE.com").masked(),
            "V***e@example.com"
        );
    }

    #[test]
    fn a_local_part_of_two_characters_shows_only_its_first() {
        assert_eq!(email("jo@example.com").masked(), "j***@example.com");
    }

    #[test]
    fn a_local_part_of_one_character_is_hidden_entirely() {
        assert_eq!(email("j@example.com").masked(), "***@example.com");
    }

    #[test]
    fn unicode_local_parts_are_masked_by_characters() {
        assert_eq!(email("张伟@example.cn").masked(), "张***@example.cn");
        assert_eq!(email("张小伟@example.cn").masked(), "张***伟@example.cn");
        assert_eq!(email("jöë@example.de").masked(), "j***ë@example.de");
    }

    #[test]
    fn it_serializes_as_its_canonical_string() {
        let e = email("Ann@Example.com");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#""Ann@example.com""#);
        assert_eq!(
            serde_json::from_str::<Email>(r#"" Ann@EXAMPLE.com ""#).unwrap(),
            e
        );
        assert!(serde_json::from_str::<Email>(r#""ann""#).is_err());
    }

    fn address() -> impl Strategy<Value = String> {
        let local = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\\.[A-Za-z0-9_+-]{1,10}){0,2}";
        let domain = "([A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?\\.){1,3}[A-Za-z]{2,6}";
        (local, domain).prop_map(|(l, d)| format!("{l}@{d}"))
    }

    fn unicode_address() -> impl Strategy<Value = String> {
        (
            "[\\p{L}\\p{N}]{1,12}",
            "[\\p{L}\\p{N}]{1,10}",
            "[\\p{L}]{2,6}",
        )
            .prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
    }

    proptest! {
        #[test]
        fn the_canonical_string_parses_to_an_equal_value(s in prop_oneof![address(), unicode_address()]) {
            if let Ok(e) = Email::parse(&s) {
                let again = Email::parse(e.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), e.as_str());
                prop_assert_eq!(&again, &e);
                let json = serde_json::to_string(&e).unwrap();
                prop_assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), e);
            }
        }

        #[test]
        fn generated_ascii_addresses_are_accepted_with_their_domain_lower_cased(s in address()) {
            let e = Email::parse(&s).unwrap();
            let (local, domain) = s.rsplit_once('@').unwrap();
            prop_assert_eq!(e.local_part(), local);
            prop_assert_eq!(e.domain(), domain.to_ascii_lowercase());
        }

        #[test]
        fn the_mask_shows_a_prefix_and_suffix_and_hides_at_least_one_character(
            s in prop_oneof![address(), unicode_address()]
        ) {
            if let Ok(e) = Email::parse(&s) {
                let local: Vec<char> = e.local_part().chars().collect();
                let n = local.len();
                let shown_first = usize::from(n >= 2);
                let shown_last = usize::from(n >= 3);
                prop_assert!(shown_first + shown_last < n);
                // The mask is built from the shown characters alone: nothing of the hidden
                // middle, not even its length, reaches it.
                let expected = format!(
                    "{}***{}@{}",
                    local[..shown_first].iter().collect::<String>(),
                    local[n - shown_last..].iter().collect::<String>(),
                    e.domain()
                );
                prop_assert_eq!(e.masked(), expected);
            }
        }

        #[test]
        fn no_address_holds_a_control_bidi_or_zero_width_character(
            s in address(),
            at in 0usize..40,
            c in prop_oneof![
                Just('\0'), Just('\r'), Just('\n'), Just('\u{202E}'), Just('\u{2066}'),
                Just('\u{200B}'), Just('\u{200D}'), Just('\u{FEFF}'), Just('\u{7F}'),
            ],
        ) {
            let mut chars: Vec<char> = s.chars().collect();
            // Inside the address: surrounding whitespace (CR, LF) is trimmed, as documented.
            let at = 1 + at % (chars.len() - 1);
            chars.insert(at, c);
            let tainted: String = chars.into_iter().collect();
            prop_assert_eq!(Email::parse(&tainted), Err(ValueError::InvalidEmail));
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC*") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn random_strings_around_an_at_sign_never_panic(l in "\\PC{0,70}", d in "\\PC{0,70}") {
            if let Ok(e) = Email::parse(&format!("{l}@{d}")) {
                let _ = e.masked();
            }
        }
    }
}
