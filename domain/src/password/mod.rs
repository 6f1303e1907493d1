//! Passwords (SPEC §2 "Passwords"): the policy they must meet and the [`Password`] value that
//! can only exist once it does.
//!
//! [`Password::parse`] checks a candidate against a [`PasswordPolicy`] in this order and
//! reports the first rule broken as a [`PasswordPolicyViolation`]:
//! 1. length, counted in characters, between `min_length` and `max_length` (8 to 20);
//! 2. only ASCII letters, digits and symbols (printable ASCII punctuation), plus the space
//!    when `allow_spaces`; any other whitespace, control or non-ASCII character is forbidden;
//! 3. the required classes: a letter, a digit, a symbol;
//! 4. not a common password, neither as typed (lower-cased) nor once normalised (trailing
//!    digits and symbols stripped, substitutions such as `@`→a and `0`→o undone), so
//!    `P@ssw0rd1!` is refused.
//!
//! The rules that need more than the candidate (differs from the last `history_depth`
//! passwords, reminder after `reminder_after_days`) are decided by the account aggregate;
//! the policy only carries their numbers.
//!
//! A [`Password`] is a secret: its `Debug` prints `Password(***)`, and it has no `Display`,
//! `Serialize` or `PartialEq`. The plain text is reachable only through
//! [`Password::expose_secret`], to hash or verify it.
//!
//! # Layout
//!
//! - `policy.rs`: [`PasswordPolicy`] (configurable, `Default` = the spec), the rule checks and
//!   [`PasswordPolicyViolation`].
//! - `common.rs`: the common-password list compiled in from `common_passwords.txt`, the
//!   normalisation, [`is_common`] and [`common_password_count`].
//! - `common_passwords.SOURCE.md`: where the list comes from and its licence.

pub mod common;
pub mod policy;

use std::fmt;

pub use common::{common_password_count, is_common};
pub use policy::{PasswordPolicy, PasswordPolicyViolation};

/// A plain-text password that meets the policy it was parsed with.
///
/// Built only by [`Password::parse`]. Deliberately not `PartialEq`: passwords are compared
/// through their hashes, never as plain text.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Accepts `candidate` exactly as given (no trimming, no case change) when it meets every
    /// rule of `policy`; otherwise reports the first rule it breaks.
    pub fn parse(
        candidate: &str,
        policy: &PasswordPolicy,
    ) -> Result<Password, PasswordPolicyViolation> {
        policy.check(candidate)?;
        Ok(Password(candidate.to_owned()))
    }

    /// The plain text, for hashing or verifying only; never log, store or return it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use PasswordPolicyViolation as V;

    fn parse(candidate: &str) -> Result<Password, PasswordPolicyViolation> {
        Password::parse(candidate, &PasswordPolicy::default())
    }

    #[test]
    fn a_strong_random_looking_password_is_accepted_as_typed() {
        let password = parse("Tq7#vLm2!x").unwrap();
        assert_eq!(password.expose_secret(), "Tq7#vLm2!x");
    }

    #[test]
    fn a_password_shorter_than_eight_characters_is_too_short() {
        assert_eq!(parse("Tq7#vLm").unwrap_err(), V::TooShort { min: 8 });
        assert_eq!(parse("").unwrap_err(), V::TooShort { min: 8 });
        assert!(parse("Tq7#vLm2").is_ok());
    }

    #[test]
    fn a_password_longer_than_twenty_characters_is_too_long() {
        assert!(parse("Tq7#vLm2!xTq7#vLm2!x").is_ok());
        assert_eq!(
            parse("Tq7#vLm2!xTq7#vLm2!xZ").unwrap_err(),
            V::TooLong { max: 20 }
        );
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        // Eight characters, eleven bytes: long enough, but the non-ASCII one is forbidden.
        assert_eq!(parse("Tq7#vLé2").unwrap_err(), V::ForbiddenCharacter);
        // Seven characters, more than eight bytes: too short comes first.
        assert_eq!(parse("Tq7#éé2").unwrap_err(), V::TooShort { min: 8 });
    }

    #[test]
    fn whitespace_control_and_non_ascii_characters_are_forbidden() {
        for candidate in [
            "Tq7#vL m2!x",
            "Tq7#vL\tm2!x",
            "Tq7#vL\nm2!x",
            "Tq7#vL\u{0}m2!x",
            "Tq7#vL\u{7f}m2!x",
            "Tq7#vLé2!x",
            "Tq7#vL\u{a0}m2!x",
            "Tq7#vL😀m2!x",
            "Тq7#vLm2!x", // Cyrillic Т
        ] {
            assert_eq!(
                parse(candidate).unwrap_err(),
                V::ForbiddenCharacter,
                "{candidate:?}"
            );
        }
    }

    #[test]
    fn a_password_without_a_letter_is_refused() {
        assert_eq!(parse("8274#6193!").unwrap_err(), V::MissingLetter);
    }

    #[test]
    fn a_password_without_a_digit_is_refused() {
        assert_eq!(parse("Tqz#vLmk!x").unwrap_err(), V::MissingDigit);
    }

    #[test]
    fn a_password_without_a_symbol_is_refused() {
        assert_eq!(parse("Tq7RvLm2Qx").unwrap_err(), V::MissingSymbol);
    }

    #[test]
    fn every_printable_ascii_punctuation_counts_as_a_symbol() {
        for symbol in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".chars() {
            let candidate = format!("Tq7vLm2x{symbol}");
            assert!(parse(&candidate).is_ok(), "{candidate:?}");
        }
    }

    #[test]
    fn common_passwords_are_refused_even_with_substitutions_and_padding() {
        for candidate in [
            "P@ssw0rd1!",
            "Passw0rd!",
            "Qwerty123!",
            "Dr@g0n2024#",
            "M0nk3y!!1",
            "1L0veY0u!",
        ] {
            assert_eq!(parse(candidate).unwrap_err(), V::Common, "{candidate}");
        }
    }

    #[test]
    fn a_common_password_that_meets_every_other_rule_is_refused() {
        // On the list as is (lower-cased), no normalisation needed.
        assert!(is_common("p@ssw0rd"));
        assert_eq!(parse("P@ssW0rd").unwrap_err(), V::Common);
    }

    #[test]
    fn rules_are_checked_in_order_length_characters_classes_common() {
        // Too short beats a forbidden character and a missing class.
        assert_eq!(parse("pass é").unwrap_err(), V::TooShort { min: 8 });
        // A forbidden character beats missing classes.
        assert_eq!(parse("password é").unwrap_err(), V::ForbiddenCharacter);
        // Letter before digit before symbol.
        assert_eq!(parse("12345678").unwrap_err(), V::MissingLetter);
        assert_eq!(parse("password").unwrap_err(), V::MissingDigit);
        assert_eq!(parse("password1").unwrap_err(), V::MissingSymbol);
        // Only a candidate meeting every other rule gets to the list.
        assert_eq!(parse("password1!").unwrap_err(), V::Common);
    }

    #[test]
    fn a_policy_allowing_spaces_accepts_a_space_but_no_other_whitespace() {
        let policy = PasswordPolicy {
            allow_spaces: true,
            ..PasswordPolicy::default()
        };
        let password = Password::parse("Tq7# vLm2!x", &policy).unwrap();
        assert_eq!(password.expose_secret(), "Tq7# vLm2!x");
        assert_eq!(
            Password::parse("Tq7#\tvLm2!x", &policy).unwrap_err(),
            V::ForbiddenCharacter
        );
    }

    #[test]
    fn a_space_does_not_count_as_a_symbol() {
        let policy = PasswordPolicy {
            allow_spaces: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            Password::parse("Tq7 vLm2 x", &policy).unwrap_err(),
            V::MissingSymbol
        );
    }

    #[test]
    fn a_policy_with_a_longer_minimum_refuses_ten_characters() {
        let policy = PasswordPolicy {
            min_length: 12,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            Password::parse("Tq7#vLm2!x", &policy).unwrap_err(),
            V::TooShort { min: 12 }
        );
        assert!(Password::parse("Tq7#vLm2!xRw", &policy).is_ok());
    }

    #[test]
    fn a_policy_can_drop_required_classes_but_never_the_common_list() {
        let relaxed = PasswordPolicy {
            require_letter: false,
            require_digit: false,
            require_symbol: false,
            ..PasswordPolicy::default()
        };
        assert!(Password::parse("qzvkwrmtxb", &relaxed).is_ok());
        assert!(Password::parse("73920184", &relaxed).is_ok());
        assert_eq!(
            Password::parse("iloveyou", &relaxed).unwrap_err(),
            V::Common
        );
        assert_eq!(
            Password::parse("12345678", &relaxed).unwrap_err(),
            V::Common
        );
    }

    #[test]
    fn a_policy_with_a_shorter_maximum_refuses_longer_passwords() {
        let policy = PasswordPolicy {
            max_length: 10,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            Password::parse("Tq7#vLm2!xR", &policy).unwrap_err(),
            V::TooLong { max: 10 }
        );
    }

    #[test]
    fn debug_of_a_password_hides_the_secret() {
        let password = parse("Tq7#vLm2!x").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
        assert_eq!(format!("{:?}", Some(password)), "Some(Password(***))");
    }

    #[test]
    fn violation_messages_never_echo_the_password() {
        for candidate in [
            "P@ssw0rd1!",
            "Tq7#vLm",
            "Tq7#vLé2!x",
            "8274#6193!",
            "Tqz#vLmk!x",
            "Tq7RvLm2Qx",
        ] {
            let message = parse(candidate).unwrap_err().to_string();
            assert!(!message.contains(candidate), "{message}");
        }
    }

    const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const DIGITS: &str = "0123456789";
    const SYMBOLS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    fn one_of(set: &'static str) -> impl Strategy<Value = char> {
        proptest::sample::select(set.chars().collect::<Vec<_>>())
    }

    fn any_allowed() -> impl Strategy<Value = char> {
        let all: Vec<char> = LETTERS
            .chars()
            .chain(DIGITS.chars())
            .chain(SYMBOLS.chars())
            .collect();
        proptest::sample::select(all)
    }

    /// 8 to 20 allowed characters with at least one letter, digit and symbol, in any order.
    fn well_formed() -> impl Strategy<Value = String> {
        (
            one_of(LETTERS),
            one_of(DIGITS),
            one_of(SYMBOLS),
            proptest::collection::vec(any_allowed(), 5..=17),
        )
            .prop_flat_map(|(letter, digit, symbol, rest)| {
                let mut chars = rest;
                chars.extend([letter, digit, symbol]);
                Just(chars).prop_shuffle()
            })
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn a_well_formed_password_is_accepted_unless_it_is_common(candidate in well_formed()) {
            let outcome = parse(&candidate);
            if is_common(&candidate) {
                prop_assert_eq!(outcome.unwrap_err(), V::Common);
            } else {
                let password = outcome.unwrap();
                prop_assert_eq!(password.expose_secret(), candidate.as_str());
            }
        }

        #[test]
        fn one_of_each_class_and_a_random_twelve_character_suffix_is_accepted_unless_common(
            letter in one_of(LETTERS),
            digit in one_of(DIGITS),
            symbol in one_of(SYMBOLS),
            suffix in proptest::collection::vec(any_allowed(), 12),
        ) {
            let candidate: String = [letter, digit, symbol].into_iter().chain(suffix).collect();
            prop_assert_eq!(parse(&candidate).is_ok(), !is_common(&candidate));
        }

        #[test]
        fn any_unicode_input_is_answered_without_panicking(candidate in any::<String>()) {
            let _ = parse(&candidate);
            let lenient = PasswordPolicy {
                min_length: 0,
                max_length: usize::MAX,
                require_letter: false,
                require_digit: false,
                require_symbol: false,
                allow_spaces: true,
                ..PasswordPolicy::default()
            };
            let _ = Password::parse(&candidate, &lenient);
        }

        #[test]
        fn any_non_ascii_character_is_forbidden(
            prefix in "[a-z]{3}[0-9]{2}[!#%]{2}",
            intruder in any::<char>().prop_filter("non-ASCII", |c| !c.is_ascii()),
        ) {
            let candidate = format!("{prefix}{intruder}");
            prop_assert_eq!(parse(&candidate).unwrap_err(), V::ForbiddenCharacter);
        }

        #[test]
        fn debug_of_any_password_never_contains_the_secret(candidate in well_formed()) {
            if let Ok(password) = parse(&candidate) {
                let shown = format!("{password:?}");
                prop_assert_eq!(shown.as_str(), "Password(***)");
                prop_assert!(!shown.contains(password.expose_secret()));
            }
        }
    }
}
