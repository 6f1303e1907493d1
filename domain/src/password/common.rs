//! The common-password list and the lookup that refuses anything on it.
//!
//! The list (`common_passwords.txt`, provenance in `common_passwords.SOURCE.md`) is compiled
//! into the binary with `include_str!`: one lower-cased password per line, most common first.
//! It is read once, on first use, into a set that holds every entry **and** every entry's
//! normalised form, so that both sides of the comparison are normalised: `1qaz2wsx` on the
//! list also refuses `1Qaz2wsx!`, whose normalised form is `iqaz2wsx`.
//!
//! # Normalisation (SPEC §2 "Passwords")
//!
//! In this order:
//! 1. lower-case;
//! 2. remove trailing digits and symbols (`Password123!` → `password`);
//! 3. undo common substitutions: `@`→a, `4`→a, `0`→o, `1`→i, `!`→i, `3`→e, `5`→s, `$`→s, `7`→t.
//!
//! Stripping comes first so that a trailing `1` or `!` is removed as padding rather than read
//! as an `i`: `P@ssw0rd1!` → `p@ssw0rd1!` → `p@ssw0rd` → `password`, which is refused.
//!
//! A candidate is common when its lower-cased form or its normalised form is in the set.
//!
//! A normalised form shorter than [`MIN_NORMALISED_LEN`] is never added to the set: stripping
//! turns list entries such as `123456` into the empty string and `a12345` into `a`, and
//! refusing every password that normalises to `""` or `a` would refuse random strings of
//! digits and symbols and anything of the shape "one letter, then digits and symbols". The
//! list's own shortest entry has four characters, so the bound keeps the set no more
//! general than the list itself.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// The list as shipped: one lower-cased, distinct password per line.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Normalised forms shorter than this are too generic to refuse on (see the module docs).
const MIN_NORMALISED_LEN: usize = 4;

/// The parsed list, built once on first use.
struct CommonPasswords {
    /// Every entry and every entry's normalised form (when long enough); entries borrow from
    /// the compiled-in text, only normalised forms that differ from their entry are owned.
    lookup: HashSet<Cow<'static, str>>,
    /// How many entries the shipped list has (its normalised forms are not counted).
    entries: usize,
}

static LIST: LazyLock<CommonPasswords> = LazyLock::new(|| {
    let mut lookup = HashSet::new();
    let mut entries = 0;
    for entry in COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        entries += 1;
        let normalised = normalise(entry);
        if normalised.chars().count() >= MIN_NORMALISED_LEN && normalised != entry {
            lookup.insert(Cow::Owned(normalised));
        }
        lookup.insert(Cow::Borrowed(entry));
    }
    CommonPasswords { lookup, entries }
});

/// Whether `candidate` is a common password: its lower-cased form or its normalised form
/// (see the module docs) is on the compiled-in list.
///
/// Takes any string and never panics; it does not check the rest of the policy.
pub fn is_common(candidate: &str) -> bool {
    let lower = candidate.to_lowercase();
    let list = &LIST.lookup;
    list.contains(lower.as_str()) || list.contains(normalise(&lower).as_str())
}

/// How many distinct passwords the compiled-in list holds.
pub fn common_password_count() -> usize {
    LIST.entries
}

/// Lower-case, strip trailing digits and symbols, then undo common substitutions.
fn normalise(candidate: &str) -> String {
    candidate
        .to_lowercase()
        .trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation())
        .chars()
        .map(undo_substitution)
        .collect()
}

fn undo_substitution(c: char) -> char {
    match c {
        '@' | '4' => 'a',
        '0' => 'o',
        '1' | '!' => 'i',
        '3' => 'e',
        '5' | '$' => 's',
        '7' => 't',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_list_has_at_least_ten_thousand_entries() {
        assert!(
            common_password_count() >= 10_000,
            "{}",
            common_password_count()
        );
    }

    #[test]
    fn the_list_is_lower_cased_distinct_printable_ascii_one_per_line() {
        let mut seen = HashSet::new();
        for line in COMMON_PASSWORDS.lines() {
            assert!(!line.is_empty(), "empty line in the list");
            assert_eq!(line, line.trim(), "entry with surrounding whitespace");
            assert_eq!(line, line.to_lowercase(), "entry not lower-cased");
            assert!(
                line.chars().all(|c| c.is_ascii_graphic()),
                "non-printable entry"
            );
            assert!(seen.insert(line), "duplicate entry {line:?}");
        }
        assert_eq!(seen.len(), common_password_count());
    }

    #[test]
    fn well_known_passwords_are_on_the_list() {
        for known in [
            "password", "qwerty", "iloveyou", "dragon", "monkey", "letmein", "123456",
        ] {
            assert!(is_common(known), "{known} should be common");
        }
    }

    #[test]
    fn lookup_ignores_case() {
        assert!(is_common("PASSWORD"));
        assert!(is_common("IloveYou"));
    }

    #[test]
    fn normalisation_strips_trailing_digits_and_symbols_before_undoing_substitutions() {
        assert_eq!(normalise("P@ssw0rd1!"), "password");
        assert_eq!(normalise("Passw0rd!"), "password");
        assert_eq!(normalise("Qwerty123!"), "qwerty");
        assert_eq!(normalise("M0nk3y$$"), "monkey");
        assert_eq!(normalise("7r0ub4dor&3"), "troubador");
    }

    #[test]
    fn substituted_and_padded_variants_of_list_entries_are_common() {
        for variant in [
            "P@ssw0rd1!",
            "Passw0rd!",
            "Qwerty123!",
            "Dr@g0n2024#",
            "M0nk3y!!",
            "1L0veY0u!",
        ] {
            assert!(is_common(variant), "{variant} should be common");
        }
    }

    #[test]
    fn entries_match_through_their_own_normalised_form() {
        // `1qaz2wsx` is on the list; its normalised form is `iqaz2wsx`.
        assert!(is_common("1qaz2wsx"));
        assert!(is_common("1Qaz2wsx!"));
    }

    #[test]
    fn random_looking_passwords_are_not_common() {
        for strong in ["Tq7#vLm2!x", "zR8&kP3@wq", "Hb4%nYq9^Lm"] {
            assert!(!is_common(strong), "{strong} should not be common");
        }
    }

    #[test]
    fn a_password_that_normalises_to_almost_nothing_is_not_common_for_that_reason() {
        // `123456` normalises to "" and `a12345` to "a"; neither may refuse everything else.
        assert!(!is_common("8#2!9$1@6%"));
        assert!(!is_common("x8#2!9$1@6"));
    }

    proptest! {
        #[test]
        fn is_common_never_panics_on_any_string(candidate in any::<String>()) {
            let _ = is_common(&candidate);
        }

        #[test]
        fn is_common_ignores_ascii_case(candidate in "[ -~]{0,24}") {
            prop_assert_eq!(is_common(&candidate), is_common(&candidate.to_ascii_uppercase()));
        }
    }
}
