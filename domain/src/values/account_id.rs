//! [`AccountId`]: the number of an account.
//!
//! Guarantees: exactly 12 ASCII digits whose value lies in
//! [`AccountId::FIRST`]`..=`[`AccountId::LAST`]. Because every value has 12 digits, the string
//! and numeric orders agree. The ID is always written as a string (in JSON too), so clients
//! whose numbers are doubles never round it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// A 12-digit account number, never reused; see the module docs for what it guarantees.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId {
    /// The numeric value; first so that the derived order is numeric.
    number: u64,
    /// The same value as 12 digits, kept so `as_str` can lend it.
    digits: String,
}

impl AccountId {
    /// The first account ID ever handed out.
    pub const FIRST: u64 = 100_000_000_001;
    /// The largest number that still has 12 digits.
    pub const LAST: u64 = 999_999_999_999;

    /// Parses exactly 12 ASCII digits (no sign, no spaces) in `FIRST..=LAST`.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        if input.len() != 12 || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::InvalidAccountId);
        }
        let number = input
            .parse::<u64>()
            .map_err(|_| ValueError::InvalidAccountId)?;
        Self::from_number(number)
    }

    /// Builds the ID of `number`, which must lie in `FIRST..=LAST`.
    pub fn from_number(number: u64) -> Result<Self, ValueError> {
        if (Self::FIRST..=Self::LAST).contains(&number) {
            Ok(Self {
                number,
                digits: number.to_string(),
            })
        } else {
            Err(ValueError::InvalidAccountId)
        }
    }

    /// The numeric value.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        &self.digits
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

impl TryFrom<String> for AccountId {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> Self {
        id.digits
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        &self.digits
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_first_account_id_is_accepted() {
        let id = AccountId::parse("100000000001").unwrap();
        assert_eq!(id.number(), AccountId::FIRST);
        assert_eq!(id.as_str(), "100000000001");
        assert_eq!(id.to_string(), "100000000001");
    }

    #[test]
    fn the_largest_twelve_digit_number_is_accepted() {
        assert_eq!(
            AccountId::parse("999999999999").unwrap().number(),
            AccountId::LAST
        );
    }

    #[test]
    fn numbers_below_the_first_id_are_refused() {
        for input in [
            "100000000000",
            "000000000001",
            "012345678901",
            "000000000000",
        ] {
            assert_eq!(
                AccountId::parse(input),
                Err(ValueError::InvalidAccountId),
                "{input}"
            );
        }
        assert_eq!(
            AccountId::from_number(AccountId::FIRST - 1),
            Err(ValueError::InvalidAccountId)
        );
        assert_eq!(AccountId::from_number(0), Err(ValueError::InvalidAccountId));
    }

    #[test]
    fn numbers_with_more_than_twelve_digits_are_refused() {
        assert_eq!(
            AccountId::parse("1000000000001"),
            Err(ValueError::InvalidAccountId)
        );
        assert_eq!(
            AccountId::from_number(AccountId::LAST + 1),
            Err(ValueError::InvalidAccountId)
        );
        assert_eq!(
            AccountId::from_number(u64::MAX),
            Err(ValueError::InvalidAccountId)
        );
    }

    #[test]
    fn anything_but_exactly_twelve_ascii_digits_is_refused() {
        for input in [
            "",
            "10000000001",
            " 100000000001",
            "100000000001 ",
            "+00000000001",
            "1000 0000 0001",
            "10000000000a",
            "１00000000001",
            "1e11",
        ] {
            assert_eq!(
                AccountId::parse(input),
                Err(ValueError::InvalidAccountId),
                "{input:?}"
            );
        }
    }

    #[test]
    fn from_number_and_parse_agree() {
        assert_eq!(
            AccountId::from_number(123_456_789_012).unwrap(),
            AccountId::parse("123456789012").unwrap()
        );
    }

    #[test]
    fn the_id_is_a_json_string() {
        let id = AccountId::parse("100000000042").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""100000000042""#);
        let back: AccountId = serde_json::from_str(r#""100000000042""#).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn json_numbers_and_bad_strings_do_not_deserialize() {
        assert!(serde_json::from_str::<AccountId>("100000000042").is_err());
        assert!(serde_json::from_str::<AccountId>(r#""100000000000""#).is_err());
    }

    #[test]
    fn ids_order_numerically() {
        let a = AccountId::from_number(100_000_000_002).unwrap();
        let b = AccountId::from_number(900_000_000_000).unwrap();
        assert!(a < b);
    }

    proptest! {
        #[test]
        fn every_id_in_range_round_trips_through_its_string(n in AccountId::FIRST..=AccountId::LAST) {
            let id = AccountId::from_number(n).unwrap();
            prop_assert_eq!(id.as_str().len(), 12);
            let back = AccountId::parse(id.as_str()).unwrap();
            prop_assert_eq!(back.number(), n);
            prop_assert_eq!(back, id);
        }

        #[test]
        fn numbers_outside_the_range_are_refused(n in prop_oneof![0..AccountId::FIRST, (AccountId::LAST + 1)..=u64::MAX]) {
            prop_assert_eq!(AccountId::from_number(n), Err(ValueError::InvalidAccountId));
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC*") {
            let _ = AccountId::parse(&s);
        }

        #[test]
        fn twelve_digit_strings_are_accepted_exactly_when_in_range(s in "[0-9]{12}") {
            let n: u64 = s.parse().unwrap();
            prop_assert_eq!(AccountId::parse(&s).is_ok(), n >= AccountId::FIRST);
        }
    }
}
