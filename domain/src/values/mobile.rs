//! [`Mobile`]: a mobile phone number, stored in E.164 (`+8613800138000`).
//!
//! Guarantees: the numbering-plan metadata of the `phonenumber` crate says the number is valid
//! and of type mobile (or, where a plan cannot tell, "fixed line or mobile", as in the US).
//! Landlines, toll-free, premium-rate and other numbers are refused with
//! [`ValueError::NotAMobileNumber`]; anything that is not a valid number at all with
//! [`ValueError::InvalidMobile`].
//!
//! Input rules (SPEC §1): spaces and dashes are dropped, nothing else is tolerated (no
//! parentheses, dots, letters or extensions); a leading `00` is read as `+`; a number with
//! neither `+` nor `00` is a Chinese national number (`+86`), its trunk `0` allowed.
//! The E.164 form re-parses to itself, so `parse(as_str())` always gives an equal value.
//!
//! [`Mobile::masked`] gives `+86 138****5678`; [`Mobile::decoy_masked`] gives a mask of the
//! same shape for a number that does not exist, for enumeration-safe recovery (SPEC §2).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use std::fmt;

use phonenumber::{country, metadata::DATABASE, Mode, Type};
use serde::{Deserialize, Serialize};

use super::ValueError;

/// A valid mobile number in E.164; see the module docs for what it guarantees.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile {
    /// `+`, country code, national number: the one form stored and compared.
    e164: String,
    /// The country calling code, kept so callers need not re-parse.
    country_code: u16,
    /// Byte index in `e164` where the national number starts.
    national_start: usize,
}

/// More digits than any numbering plan uses (E.164 allows 15, a national trunk prefix adds
/// one or two); longer input is refused before the parser sees it.
const MAX_DIGITS: usize = 17;

/// The stars of a mask: always four, whatever the number of digits hidden, so the mask does
/// not tell the length of the number.
const MASK: &str = "****";

/// Chinese mobile prefixes (the first three digits of the national number) for decoys. Every
/// one is a mobile range in the `phonenumber` metadata for all eight digits that follow (a
/// test pins this), so a decoy always looks like the mask of a number that could exist.
const DECOY_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", //
    "145", "147", //
    "150", "151", "152", "153", "155", "156", "157", "158", "159", //
    "162", "165", "166", "167", //
    "170", "171", "172", "173", "175", "176", "177", "178", //
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", //
    "190", "191", "192", "193", "195", "196", "197", "198", "199", //
];

impl Mobile {
    /// Parses a phone number typed by a person and keeps it only when it is a mobile number.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        // Parsing a number costs tens of microseconds (the metadata's regexes), and every event
        // read back from the store parses its numbers again: remember recent answers. The cache
        // is bounded, and only ever holds what `parse_uncached` answered for the same input.
        static RECENT: LazyLock<Mutex<HashMap<String, Result<Mobile, ValueError>>>> =
            LazyLock::new(Default::default);
        const CAPACITY: usize = 65_536;
        if let Some(known) = RECENT.lock().unwrap_or_else(|e| e.into_inner()).get(input) {
            return known.clone();
        }
        let parsed = Self::parse_uncached(input);
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= CAPACITY {
            recent.clear();
        }
        recent.insert(input.to_owned(), parsed.clone());
        parsed
    }

    fn parse_uncached(input: &str) -> Result<Self, ValueError> {
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let (international, digits) = match compact.strip_prefix("00") {
            Some(rest) => (true, rest),
            None => match compact.strip_prefix('+') {
                Some(rest) => (true, rest),
                None => (false, compact.as_str()),
            },
        };
        // No country code starts with 0; the parser would otherwise read `+0086` as `+86`.
        if digits.is_empty()
            || digits.len() > MAX_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (international && digits.starts_with('0'))
        {
            return Err(ValueError::InvalidMobile);
        }
        let text = if international {
            format!("+{digits}")
        } else {
            digits.to_owned()
        };
        let mobile = Self::from_parser(&text)?;
        // The parser's E.164 output is not always read back as the same number (it can drop a
        // significant leading zero); accept only numbers whose stored form is a fixed point.
        match Self::from_parser(&mobile.e164) {
            Ok(again) if again == mobile => Ok(mobile),
            _ => Err(ValueError::InvalidMobile),
        }
    }

    fn from_parser(text: &str) -> Result<Self, ValueError> {
        let number = phonenumber::parse(Some(country::Id::CN), text)
            .map_err(|_| ValueError::InvalidMobile)?;
        if !number.is_valid() {
            return Err(ValueError::InvalidMobile);
        }
        if !matches!(
            number.number_type(&DATABASE),
            Type::Mobile | Type::FixedLineOrMobile
        ) {
            return Err(ValueError::NotAMobileNumber);
        }
        let country_code = number.code().value();
        let e164 = number.format().mode(Mode::E164).to_string();
        let national_start = 1 + country_code.to_string().len();
        let well_formed = e164.len() > national_start
            && e164.starts_with(&format!("+{country_code}"))
            && e164[1..].bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return Err(ValueError::InvalidMobile);
        }
        Ok(Self {
            e164,
            country_code,
            national_start,
        })
    }

    /// The E.164 form, e.g. `+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The country calling code, e.g. `86`.
    pub fn country_code(&self) -> u16 {
        self.country_code
    }

    /// The national significant number, digits only, e.g. `13800138000`.
    pub fn national_number(&self) -> &str {
        &self.e164[self.national_start..]
    }

    /// `+86 138****5678`: `+`, the country code, a space, the first three and last four
    /// digits of the national number around exactly four stars. A national number shorter
    /// than eight digits shows fewer, so at least one digit is always hidden.
    pub fn masked(&self) -> String {
        mask(self.country_code, self.national_number())
    }

    /// A mask of the shape `+86 1dd****dddd` for a number that does not exist, derived only from
    /// `seed` (a keyed hash of what was looked up, computed by the caller), so the same lookup
    /// always gets the same decoy. The three leading digits are a real Chinese mobile prefix.
    pub fn decoy_masked(seed: &[u8; 32]) -> String {
        // Eight bytes of a keyed hash are uniform; reducing 2^64 values modulo the 520,000
        // possible decoys leaves a bias far below anything observable.
        let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = *seed;
        let value = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
        let choices = DECOY_PREFIXES.len() as u64 * 10_000;
        let pick = value % choices;
        // `pick / 10_000 < DECOY_PREFIXES.len()`, so the index is in bounds and fits a usize.
        let prefix = DECOY_PREFIXES[(pick / 10_000) as usize];
        let last_four = pick % 10_000;
        format!("+86 {prefix}{MASK}{last_four:04}")
    }
}

/// The mask of `national` (ASCII digits) under `country_code`; see [`Mobile::masked`].
fn mask(country_code: u16, national: &str) -> String {
    let n = national.len();
    let first = 3.min(n.saturating_sub(5));
    let last = 4.min(n.saturating_sub(1 + first));
    format!(
        "+{country_code} {}{MASK}{}",
        &national[..first],
        &national[n - last..]
    )
}

impl fmt::Display for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl TryFrom<String> for Mobile {
    type Error = ValueError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Mobile> for String {
    fn from(mobile: Mobile) -> Self {
        mobile.e164
    }
}

impl AsRef<str> for Mobile {
    fn as_ref(&self) -> &str {
        &self.e164
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn mobile(s: &str) -> Mobile {
        Mobile::parse(s).unwrap()
    }

    #[test]
    fn a_number_without_country_code_is_read_as_chinese() {
        let m = mobile("13800138000");
        assert_eq!(m.as_str(), "+8613800138000");
        assert_eq!(m.country_code(), 86);
        assert_eq!(m.national_number(), "13800138000");
        assert_eq!(m.to_string(), "+8613800138000");
    }

    #[test]
    fn spaces_and_dashes_are_ignored() {
        for input in [
            "138 0013 8000",
            "138-0013-8000",
            "+86 138-0013-8000",
            " +86 - 138 0013 8000 ",
            "0086 138 0013 8000",
        ] {
            assert_eq!(mobile(input).as_str(), "+8613800138000", "{input:?}");
        }
    }

    #[test]
    fn a_leading_double_zero_is_read_as_plus() {
        assert_eq!(mobile("0044 7911 123456").as_str(), "+447911123456");
        assert_eq!(mobile("0044 7911 123456"), mobile("+44 7911 123456"));
        assert_eq!(mobile("0044 7911 123456").country_code(), 44);
        assert_eq!(mobile("0044 7911 123456").national_number(), "7911123456");
    }

    #[test]
    fn the_uk_drama_range_is_not_a_real_number() {
        // Ofcom reserves 07700 900000–900999 for fiction; the metadata marks it invalid.
        assert_eq!(
            Mobile::parse("0044 7700 900123"),
            Err(ValueError::InvalidMobile)
        );
    }

    #[test]
    fn a_chinese_trunk_zero_is_allowed() {
        assert_eq!(mobile("0138 0013 8000").as_str(), "+8613800138000");
    }

    #[test]
    fn a_chinese_landline_is_not_a_mobile_number() {
        for input in ["+86 10 1234 5678", "010 1234 5678", "0086 21 6123 4567"] {
            assert_eq!(
                Mobile::parse(input),
                Err(ValueError::NotAMobileNumber),
                "{input}"
            );
        }
    }

    #[test]
    fn toll_free_numbers_are_not_mobile_numbers() {
        assert_eq!(
            Mobile::parse("+1 800 253 0000"),
            Err(ValueError::NotAMobileNumber)
        );
    }

    #[test]
    fn a_us_number_the_plan_calls_fixed_line_or_mobile_is_accepted() {
        let m = mobile("+1 415 555 2671");
        assert_eq!(m.as_str(), "+14155552671");
        assert_eq!(m.country_code(), 1);
        assert_eq!(m.national_number(), "4155552671");
    }

    #[test]
    fn other_countries_mobiles_are_accepted() {
        assert_eq!(mobile("+65 9123 4567").as_str(), "+6591234567");
        assert_eq!(mobile("+852 5123 4567").country_code(), 852);
        assert_eq!(mobile("+39 312 345 6789").as_str(), "+393123456789");
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for input in [
            "",
            " ",
            "-",
            "+",
            "00",
            "0",
            "12345",
            "1380013800",
            "138001380001",
            "+86 138 0013 80001",
            "+999 1234 5678",
            "+0 123456789",
            "+0086 138 0013 8000",
            "000086 138 0013 8000",
            "99999999999999999999999999",
        ] {
            assert_eq!(
                Mobile::parse(input),
                Err(ValueError::InvalidMobile),
                "{input:?}"
            );
        }
    }

    #[test]
    fn only_spaces_and_dashes_are_tolerated_as_separators() {
        for input in [
            "(138) 0013 8000",
            "138.0013.8000",
            "138/0013/8000",
            "138\t0013\t8000",
            "+86 13800138000 ext 12",
            "+86 13800138000;ext=12",
            "+1 800 FLOWERS",
            "+86 138 0013 8000 x",
            "86+13800138000",
            "+-86 13800138000x",
            "１３８００１３８０００",
        ] {
            assert_eq!(
                Mobile::parse(input),
                Err(ValueError::InvalidMobile),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_chinese_mobile_masks_to_its_first_three_and_last_four_digits() {
        assert_eq!(mobile("+8613800138000").masked(), "+86 138****8000");
        assert_eq!(mobile("+8613912345678").masked(), "+86 139****5678");
    }

    #[test]
    fn a_shorter_national_number_still_gets_four_stars() {
        assert_eq!(mobile("+1 415 555 2671").masked(), "+1 415****2671");
        assert_eq!(mobile("+65 9123 4567").masked(), "+65 912****4567");
    }

    #[test]
    fn very_short_national_numbers_show_fewer_digits_and_hide_at_least_one() {
        assert_eq!(mask(683, "1234567"), "+683 12****4567");
        assert_eq!(mask(1, "123456"), "+1 1****3456");
        assert_eq!(mask(1, "12345"), "+1 ****2345");
        assert_eq!(mask(1, "1234"), "+1 ****234");
        assert_eq!(mask(1, "12"), "+1 ****2");
        assert_eq!(mask(1, "1"), "+1 ****");
        assert_eq!(mask(1, ""), "+1 ****");
    }

    #[test]
    fn it_serializes_as_e164_and_deserializes_through_parse() {
        let m = mobile("138 0013 8000");
        assert_eq!(serde_json::to_string(&m).unwrap(), r#""+8613800138000""#);
        assert_eq!(
            serde_json::from_str::<Mobile>(r#""138-0013-8000""#).unwrap(),
            m
        );
        assert!(serde_json::from_str::<Mobile>(r#""+861012345678""#).is_err());
        assert!(serde_json::from_str::<Mobile>("13800138000").is_err());
    }

    #[test]
    fn the_decoy_of_a_fixed_seed_is_fixed() {
        assert_eq!(Mobile::decoy_masked(&[0; 32]), "+86 130****0000");
        // Only the first eight bytes count: 513 picks prefix 130 and last four 0513.
        let mut seed = [0xFF; 32];
        seed[..8].copy_from_slice(&513u64.to_le_bytes());
        assert_eq!(Mobile::decoy_masked(&seed), "+86 130****0513");
        let mut seed = [0; 32];
        seed[..8].copy_from_slice(&(51 * 10_000 + 9_999u64).to_le_bytes());
        assert_eq!(Mobile::decoy_masked(&seed), "+86 199****9999");
    }

    #[test]
    fn every_decoy_prefix_is_a_chinese_mobile_range() {
        for prefix in DECOY_PREFIXES {
            for rest in ["00000000", "12345678", "55555555", "98765432", "99999999"] {
                let number = format!("+86{prefix}{rest}");
                assert_eq!(
                    Mobile::parse(&number).map(|m| m.masked()),
                    Ok(format!("+86 {prefix}****{}", &rest[4..])),
                    "{number}"
                );
            }
        }
    }

    fn is_decoy_shaped(mask: &str) -> bool {
        let b = mask.as_bytes();
        b.len() == 15
            && mask.starts_with("+86 1")
            && (b'3'..=b'9').contains(&b[5])
            && b[6].is_ascii_digit()
            && &mask[7..11] == "****"
            && b[11..].iter().all(u8::is_ascii_digit)
    }

    fn chinese_mobile() -> impl Strategy<Value = String> {
        (prop::sample::select(DECOY_PREFIXES), "[0-9]{8}").prop_map(|(p, r)| format!("{p}{r}"))
    }

    /// How a person might type the same number: separators, `+86`, `0086`, trunk `0`.
    fn typed(number: String) -> impl Strategy<Value = (String, String)> {
        let e164 = format!("+86{number}");
        (
            prop::sample::select(vec!["", "+86", "0086", "+86 ", "0086-", "0"]),
            prop::collection::vec(prop::sample::select(vec!["", " ", "-", " - "]), 11),
        )
            .prop_map(move |(head, seps)| {
                let body: String = number
                    .chars()
                    .zip(&seps)
                    .map(|(c, sep)| format!("{c}{sep}"))
                    .collect();
                (format!("{head}{body}"), e164.clone())
            })
    }

    fn assert_mask_hides_the_middle(m: &Mobile) -> Result<(), TestCaseError> {
        let masked = m.masked();
        let national = m.national_number();
        let head = format!("+{} ", m.country_code());
        let rest = masked.strip_prefix(&head).unwrap();
        let (shown_first, shown_last) = rest.split_once(MASK).unwrap();
        prop_assert!(national.starts_with(shown_first));
        prop_assert!(national.ends_with(shown_last));
        prop_assert!(shown_first.len() + shown_last.len() < national.len());
        prop_assert!(shown_first.len() <= 3 && shown_last.len() <= 4);
        Ok(())
    }

    proptest! {
        #[test]
        fn chinese_mobiles_typed_any_way_parse_to_their_e164(
            (input, e164) in chinese_mobile().prop_flat_map(typed)
        ) {
            let m = Mobile::parse(&input).unwrap();
            prop_assert_eq!(m.as_str(), e164);
        }

        #[test]
        fn the_canonical_string_parses_to_an_equal_value(
            input in prop_oneof![chinese_mobile(), "\\+[1-9][0-9]{6,14}", "[0-9]{5,13}"]
        ) {
            if let Ok(m) = Mobile::parse(&input) {
                prop_assert_eq!(Mobile::parse(m.as_str()).unwrap(), m.clone());
                let json = serde_json::to_string(&m).unwrap();
                prop_assert_eq!(serde_json::from_str::<Mobile>(&json).unwrap(), m.clone());
                prop_assert_eq!(
                    m.as_str(),
                    format!("+{}{}", m.country_code(), m.national_number())
                );
            }
        }

        #[test]
        fn the_mask_shows_only_a_prefix_and_a_suffix_and_hides_a_digit(
            input in prop_oneof![chinese_mobile(), "\\+[1-9][0-9]{6,14}"]
        ) {
            if let Ok(m) = Mobile::parse(&input) {
                assert_mask_hides_the_middle(&m)?;
            }
        }

        #[test]
        fn the_mask_rule_hides_a_digit_for_every_length(national in "[0-9]{1,17}", cc in 1u16..1000) {
            let masked = mask(cc, &national);
            let rest = masked.strip_prefix(&format!("+{cc} ")).unwrap();
            let (shown_first, shown_last) = rest.split_once(MASK).unwrap();
            prop_assert!(national.starts_with(shown_first));
            prop_assert!(national.ends_with(shown_last));
            prop_assert!(shown_first.len() + shown_last.len() < national.len());
            if national.len() >= 8 {
                prop_assert_eq!((shown_first.len(), shown_last.len()), (3, 4));
            }
        }

        #[test]
        fn random_strings_never_panic(s in "\\PC*") {
            let _ = Mobile::parse(&s);
        }

        #[test]
        fn random_digit_strings_never_panic(s in "[+0]?[0-9 -]{0,24}") {
            if let Ok(m) = Mobile::parse(&s) {
                assert_mask_hides_the_middle(&m)?;
            }
        }

        #[test]
        fn the_decoy_has_the_shape_of_a_chinese_mask_and_is_stable(seed in any::<[u8; 32]>()) {
            let decoy = Mobile::decoy_masked(&seed);
            prop_assert!(is_decoy_shaped(&decoy), "{}", decoy);
            prop_assert_eq!(Mobile::decoy_masked(&seed), decoy);
        }

        #[test]
        fn a_decoy_is_the_mask_of_some_valid_chinese_mobile(seed in any::<[u8; 32]>(), middle in "[0-9]{4}") {
            let decoy = Mobile::decoy_masked(&seed);
            let number = format!("+86{}{middle}{}", &decoy[4..7], &decoy[11..]);
            prop_assert_eq!(Mobile::parse(&number).unwrap().masked(), decoy);
        }
    }
}
