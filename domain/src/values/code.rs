//! [`VerificationCode`]: the six digits a customer types back to prove they hold a mobile or an
//! inbox.
//!
//! Guarantees: exactly 6 ASCII digits, leading zeros kept (`"004217"` is a code, `4217` is not).
//! The code is a secret until it is used up, so:
//!
//! - `Debug` prints `VerificationCode(******)`, never the digits, and there is no `Display`;
//! - equality is constant-time;
//! - it serializes (commands carry the code a customer typed, and the issuer hands a fresh code
//!   to sealing), but **events never carry it**: they keep a keyed hash to check against and a
//!   sealed copy only the notifier opens (SPEC §2, Verification codes).

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::ValueError;

/// Six digits; see the module docs for how it stays out of logs.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VerificationCode(String);

impl VerificationCode {
    /// How many digits a code has.
    pub const LENGTH: usize = 6;

    /// Parses exactly six ASCII digits (no spaces, no sign).
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        if input.len() == Self::LENGTH && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(ValueError::InvalidVerificationCode)
        }
    }

    /// The code for `number`, zero-padded to six digits; `None` from 1,000,000 up.
    /// The issuer draws `number` from an injected random source.
    pub fn from_number(number: u32) -> Option<Self> {
        (number < 1_000_000).then(|| Self(format!("{number:06}")))
    }

    /// The six digits, for hashing, sealing or comparing against what the customer typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for VerificationCode {
    /// Constant-time, so a comparison never tells how many leading digits matched.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for VerificationCode {}

impl Hash for VerificationCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerificationCode(******)")
    }
}

impl TryFrom<String> for VerificationCode {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<VerificationCode> for String {
    fn from(code: VerificationCode) -> Self {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn six_digits_are_a_code() {
        assert_eq!(
            VerificationCode::parse("123456").unwrap().as_str(),
            "123456"
        );
    }

    #[test]
    fn leading_zeros_are_kept() {
        assert_eq!(
            VerificationCode::parse("000042").unwrap().as_str(),
            "000042"
        );
        assert_eq!(
            VerificationCode::from_number(42).unwrap().as_str(),
            "000042"
        );
        assert_eq!(VerificationCode::from_number(0).unwrap().as_str(), "000000");
    }

    #[test]
    fn numbers_of_a_million_and_up_are_not_codes() {
        assert_eq!(
            VerificationCode::from_number(999_999).unwrap().as_str(),
            "999999"
        );
        assert_eq!(VerificationCode::from_number(1_000_000), None);
        assert_eq!(VerificationCode::from_number(u32::MAX), None);
    }

    #[test]
    fn anything_but_six_ascii_digits_is_refused() {
        for input in [
            "",
            "12345",
            "1234567",
            " 123456",
            "123456 ",
            "123 456",
            "12345a",
            "-12345",
            "+12345",
            "１２３４５６",
            "12.456",
        ] {
            assert_eq!(
                VerificationCode::parse(input),
                Err(ValueError::InvalidVerificationCode),
                "{input:?}"
            );
        }
    }

    #[test]
    fn debug_output_never_shows_the_digits() {
        let code = VerificationCode::parse("731906").unwrap();
        assert_eq!(format!("{code:?}"), "VerificationCode(******)");
        assert_eq!(format!("{code:#?}"), "VerificationCode(******)");
        assert_eq!(
            format!("{:?}", Some(&code)),
            "Some(VerificationCode(******))"
        );
    }

    #[test]
    fn a_code_serializes_as_its_digits_and_deserializes_through_parse() {
        let code = VerificationCode::parse("012345").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), r#""012345""#);
        assert_eq!(
            serde_json::from_str::<VerificationCode>(r#""012345""#).unwrap(),
            code
        );
        assert!(serde_json::from_str::<VerificationCode>(r#""12345""#).is_err());
        assert!(serde_json::from_str::<VerificationCode>("123456").is_err());
    }

    proptest! {
        #[test]
        fn every_number_below_a_million_round_trips(n in 0u32..1_000_000) {
            let code = VerificationCode::from_number(n).unwrap();
            prop_assert_eq!(code.as_str().len(), 6);
            prop_assert_eq!(code.as_str().parse::<u32>().unwrap(), n);
            prop_assert_eq!(VerificationCode::parse(code.as_str()).unwrap(), code);
        }

        #[test]
        fn codes_are_equal_exactly_when_their_digits_are(a in "[0-9]{6}", b in "[0-9]{6}") {
            let (ca, cb) = (VerificationCode::parse(&a).unwrap(), VerificationCode::parse(&b).unwrap());
            prop_assert_eq!(ca == cb, a == b);
        }

        #[test]
        fn debug_never_contains_a_digit(n in 0u32..1_000_000) {
            let shown = format!("{:?}", VerificationCode::from_number(n).unwrap());
            prop_assert!(!shown.bytes().any(|b| b.is_ascii_digit()));
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC*") {
            let _ = VerificationCode::parse(&s);
        }
    }
}
