//! The password policy: its configurable numbers and switches, the rules it checks, and one
//! error variant per rule.
//!
//! Rules are checked in a fixed order and the first one broken is reported: length, forbidden
//! characters, required character classes (letter, digit, symbol), then the common-password
//! list. The list comes last because it is the only check that is not a plain scan of the
//! candidate.

use serde::{Deserialize, Serialize};

use super::common::is_common;

/// The provider's password policy (SPEC §2 "Passwords"). Every field is configurable;
/// `Default` is the policy the specification prescribes, and `#[serde(default)]` lets
/// configuration override single fields and keep the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values, not bytes) a password may have.
    pub min_length: usize,
    /// Most characters a password may have; also bounds the work hashing does per request.
    pub max_length: usize,
    /// Whether at least one ASCII letter is required.
    pub require_letter: bool,
    /// Whether at least one ASCII digit is required.
    pub require_digit: bool,
    /// Whether at least one symbol (printable ASCII punctuation) is required.
    pub require_symbol: bool,
    /// Whether the space character is allowed; other whitespace never is.
    pub allow_spaces: bool,
    /// How many recent passwords a new one must differ from, the current one included.
    pub history_depth: usize,
    /// Age in days after which a change is recommended and one reminder is sent; nothing is
    /// ever locked or forced by age.
    pub reminder_after_days: i64,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 20,
            require_letter: true,
            require_digit: true,
            require_symbol: true,
            allow_spaces: false,
            // The current password and the two before it.
            history_depth: 3,
            reminder_after_days: 90,
        }
    }
}

/// A broken password rule, one variant per rule. Messages are fit for an API error detail and
/// never contain the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyViolation {
    /// Fewer characters than `min_length`.
    #[error("The password must be at least {min} characters long.")]
    TooShort { min: usize },
    /// More characters than `max_length`.
    #[error("The password must be at most {max} characters long.")]
    TooLong { max: usize },
    /// A character other than an ASCII letter, digit or symbol (or the space, when allowed).
    #[error("The password may contain only ASCII letters, digits and symbols.")]
    ForbiddenCharacter,
    /// No ASCII letter while `require_letter`.
    #[error("The password must contain at least one letter.")]
    MissingLetter,
    /// No ASCII digit while `require_digit`.
    #[error("The password must contain at least one digit.")]
    MissingDigit,
    /// No printable ASCII punctuation while `require_symbol`.
    #[error("The password must contain at least one symbol.")]
    MissingSymbol,
    /// On the common-password list, as typed or once normalised.
    #[error("The password is too common; choose one that is harder to guess.")]
    Common,
}

impl PasswordPolicy {
    /// Checks `candidate` against every rule, in order, and reports the first one broken.
    pub(super) fn check(&self, candidate: &str) -> Result<(), PasswordPolicyViolation> {
        use PasswordPolicyViolation as V;

        let length = candidate.chars().count();
        if length < self.min_length {
            return Err(V::TooShort {
                min: self.min_length,
            });
        }
        if length > self.max_length {
            return Err(V::TooLong {
                max: self.max_length,
            });
        }
        if !candidate.chars().all(|c| self.allows(c)) {
            return Err(V::ForbiddenCharacter);
        }
        let has = |class: fn(&char) -> bool| candidate.chars().any(|c| class(&c));
        if self.require_letter && !has(char::is_ascii_alphabetic) {
            return Err(V::MissingLetter);
        }
        if self.require_digit && !has(char::is_ascii_digit) {
            return Err(V::MissingDigit);
        }
        if self.require_symbol && !has(char::is_ascii_punctuation) {
            return Err(V::MissingSymbol);
        }
        if is_common(candidate) {
            return Err(V::Common);
        }
        Ok(())
    }

    /// ASCII letters, digits and symbols always; the space only when configured.
    fn allows(&self, c: char) -> bool {
        c.is_ascii_alphanumeric() || c.is_ascii_punctuation() || (c == ' ' && self.allow_spaces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_the_one_the_specification_prescribes() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.min_length, 8);
        assert_eq!(policy.max_length, 20);
        assert!(policy.require_letter && policy.require_digit && policy.require_symbol);
        assert!(!policy.allow_spaces);
        assert_eq!(policy.history_depth, 3);
        assert_eq!(policy.reminder_after_days, 90);
    }

    #[test]
    fn configuration_can_override_single_fields_and_keep_the_defaults() {
        let policy: PasswordPolicy =
            serde_json::from_str(r#"{"min_length": 12, "allow_spaces": true}"#).unwrap();
        assert_eq!(
            policy,
            PasswordPolicy {
                min_length: 12,
                allow_spaces: true,
                ..PasswordPolicy::default()
            }
        );
    }

    #[test]
    fn an_empty_configuration_is_the_default_policy() {
        let policy: PasswordPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(policy, PasswordPolicy::default());
    }

    #[test]
    fn the_policy_round_trips_through_serde() {
        let policy = PasswordPolicy {
            history_depth: 5,
            ..PasswordPolicy::default()
        };
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(
            serde_json::from_str::<PasswordPolicy>(&json).unwrap(),
            policy
        );
    }

    #[test]
    fn violation_messages_are_sentences_naming_the_configured_bounds() {
        assert_eq!(
            PasswordPolicyViolation::TooShort { min: 8 }.to_string(),
            "The password must be at least 8 characters long."
        );
        assert_eq!(
            PasswordPolicyViolation::TooLong { max: 20 }.to_string(),
            "The password must be at most 20 characters long."
        );
        for violation in [
            PasswordPolicyViolation::ForbiddenCharacter,
            PasswordPolicyViolation::MissingLetter,
            PasswordPolicyViolation::MissingDigit,
            PasswordPolicyViolation::MissingSymbol,
            PasswordPolicyViolation::Common,
        ] {
            let message = violation.to_string();
            assert!(message.starts_with("The password "), "{message}");
            assert!(message.ends_with('.'), "{message}");
        }
    }
}
