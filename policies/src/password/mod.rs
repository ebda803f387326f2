//! Operator-configurable password rules and the check of a candidate password against them.

use std::fmt;

use crate::login_name::canonical_login_name;

/// Shortest login name that is checked for inside passwords; shorter names ("li", "wu") occur in
/// too many good passwords by chance.
const MIN_LOGIN_NAME_CHECKED: usize = 3;

/// Operator-configurable password rules (the ministry raised the system's security grade and its
/// password rules, and may raise them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values).
    pub min_length: usize,
    /// Most characters; bounds hashing cost and stops absurd inputs.
    pub max_length: usize,
    /// At least one uppercase letter (Unicode).
    pub require_upper: bool,
    /// At least one lowercase letter (Unicode).
    pub require_lower: bool,
    /// At least one ASCII digit 0-9.
    pub require_digit: bool,
    /// At least one character that is neither a letter, a digit nor whitespace.
    pub require_symbol: bool,
}

impl Default for PasswordPolicy {
    /// Ten to 128 characters and no composition rules: NIST SP 800-63B favours length over
    /// composition, which mostly produces "Password1!".
    fn default() -> Self {
        PasswordPolicy {
            min_length: 10,
            max_length: 128,
            require_upper: false,
            require_lower: false,
            require_digit: false,
            require_symbol: false,
        }
    }
}

/// One way a password fails the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    TooLong,
    NeedsUpper,
    NeedsLower,
    NeedsDigit,
    NeedsSymbol,
    ContainsLoginName,
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordProblem::TooShort => "password is too short",
            PasswordProblem::TooLong => "password is too long",
            PasswordProblem::NeedsUpper => "password needs an uppercase letter",
            PasswordProblem::NeedsLower => "password needs a lowercase letter",
            PasswordProblem::NeedsDigit => "password needs a digit",
            PasswordProblem::NeedsSymbol => "password needs a symbol",
            PasswordProblem::ContainsLoginName => "password must not contain the login name",
        })
    }
}

/// Check `password` against `policy`; an empty result means it is acceptable. Problems come in
/// the order of [`PasswordProblem`]'s variants, every failing rule listed so the page can show
/// them all at once.
///
/// Length counts Unicode scalar values, not bytes, so a Chinese passphrase is not judged three
/// times longer than it is. `ContainsLoginName` applies when the canonical login name (see
/// [`canonical_login_name`]) has at least three characters and appears in the password, compared
/// without case.
pub fn check_password(
    password: &str,
    login_name: &str,
    policy: &PasswordPolicy,
) -> Vec<PasswordProblem> {
    let mut problems = Vec::new();
    let length = password.chars().count();
    if length < policy.min_length {
        problems.push(PasswordProblem::TooShort);
    }
    if length > policy.max_length {
        problems.push(PasswordProblem::TooLong);
    }
    if policy.require_upper && !password.chars().any(char::is_uppercase) {
        problems.push(PasswordProblem::NeedsUpper);
    }
    if policy.require_lower && !password.chars().any(char::is_lowercase) {
        problems.push(PasswordProblem::NeedsLower);
    }
    if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
        problems.push(PasswordProblem::NeedsDigit);
    }
    if policy.require_symbol && !password.chars().any(is_symbol) {
        problems.push(PasswordProblem::NeedsSymbol);
    }
    let name = canonical_login_name(login_name);
    if name.chars().count() >= MIN_LOGIN_NAME_CHECKED && password.to_lowercase().contains(&name) {
        problems.push(PasswordProblem::ContainsLoginName);
    }
    problems
}

/// A "symbol" for composition rules: anything that is not a letter, a digit or whitespace.
fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordProblem::*;

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            max_length: 20,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_symbol: true,
        }
    }

    #[test]
    fn default_policy() {
        let p = PasswordPolicy::default();
        assert_eq!(p.min_length, 10);
        assert_eq!(p.max_length, 128);
        assert!(!p.require_upper && !p.require_lower && !p.require_digit && !p.require_symbol);
        assert!(check_password("correct horse battery", "alice", &p).is_empty());
        assert!(check_password("aaaaaaaaaa", "bob", &p).is_empty());
        assert_eq!(check_password("aaaaaaaaa", "bob", &p), vec![TooShort]);
        assert_eq!(check_password("", "bob", &p), vec![TooShort]);
    }

    #[test]
    fn length_bounds_are_inclusive() {
        let p = PasswordPolicy::default();
        assert!(check_password(&"x".repeat(128), "bob", &p).is_empty());
        assert_eq!(check_password(&"x".repeat(129), "bob", &p), vec![TooLong]);
        assert!(check_password(&"x".repeat(10), "bob", &p).is_empty());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let p = PasswordPolicy::default();
        // Nine CJK characters: 27 bytes but still too short.
        assert_eq!(
            check_password("我的密碼很安全嗎？", "bob", &p),
            vec![TooShort]
        );
        assert!(check_password("我的密碼真的很安全了嗎", "bob", &p).is_empty());
        let p = PasswordPolicy {
            max_length: 10,
            ..PasswordPolicy::default()
        };
        assert!(check_password(&"學".repeat(10), "bob", &p).is_empty());
        assert_eq!(check_password(&"學".repeat(11), "bob", &p), vec![TooLong]);
    }

    #[test]
    fn composition_rules() {
        let p = strict();
        assert!(check_password("Abcdef1!", "bob", &p).is_empty());
        assert_eq!(check_password("abcdef1!", "bob", &p), vec![NeedsUpper]);
        assert_eq!(check_password("ABCDEF1!", "bob", &p), vec![NeedsLower]);
        assert_eq!(check_password("Abcdefg!", "bob", &p), vec![NeedsDigit]);
        assert_eq!(check_password("Abcdefg1", "bob", &p), vec![NeedsSymbol]);
        assert_eq!(
            check_password("", "bob", &p),
            vec![TooShort, NeedsUpper, NeedsLower, NeedsDigit, NeedsSymbol]
        );
    }

    #[test]
    fn symbols_and_whitespace() {
        let p = PasswordPolicy {
            require_symbol: true,
            min_length: 1,
            ..PasswordPolicy::default()
        };
        for ok in ["a b-c", "x_y", "a.b", "~", "€", "a，b", "🔑"] {
            assert!(check_password(ok, "bob", &p).is_empty(), "{ok:?}");
        }
        // Spaces, letters (CJK included) and digits are not symbols.
        for bad in ["a b c", "學籍", "abc123", "１２３"] {
            assert_eq!(check_password(bad, "bob", &p), vec![NeedsSymbol], "{bad:?}");
        }
    }

    #[test]
    fn digits_are_ascii() {
        let p = PasswordPolicy {
            require_digit: true,
            min_length: 1,
            ..PasswordPolicy::default()
        };
        assert!(check_password("a0", "bob", &p).is_empty());
        assert_eq!(check_password("a１", "bob", &p), vec![NeedsDigit]);
    }

    #[test]
    fn unicode_case() {
        let p = PasswordPolicy {
            require_upper: true,
            require_lower: true,
            min_length: 1,
            ..PasswordPolicy::default()
        };
        assert!(check_password("Éé", "bob", &p).is_empty());
        assert_eq!(
            check_password("學籍", "bob", &p),
            vec![NeedsUpper, NeedsLower]
        );
    }

    #[test]
    fn contains_login_name() {
        let p = PasswordPolicy::default();
        assert_eq!(
            check_password("my-alice-password", "alice", &p),
            vec![ContainsLoginName]
        );
        assert_eq!(
            check_password("MY-ALICE-PASSWORD", "Alice", &p),
            vec![ContainsLoginName]
        );
        assert_eq!(
            check_password("aliceALICEalice", "  ALICE ", &p),
            vec![ContainsLoginName]
        );
        assert_eq!(
            check_password("alice", "alice", &p),
            vec![TooShort, ContainsLoginName]
        );
        assert!(check_password("my-alic-password", "alice", &p).is_empty());
        assert_eq!(
            check_password("王小明的密碼很長很長", "王小明", &p),
            vec![ContainsLoginName]
        );
    }

    #[test]
    fn short_login_names_are_not_checked() {
        let p = PasswordPolicy::default();
        assert!(check_password("password-for-li", "li", &p).is_empty());
        assert!(check_password("password-for-li", " li ", &p).is_empty());
        assert!(check_password("abcdefghij", "", &p).is_empty());
        assert_eq!(
            check_password("password-for-lin", "lin", &p),
            vec![ContainsLoginName]
        );
    }

    #[test]
    fn problems_listed_in_order() {
        let p = strict();
        let long = format!("bob{}", "b".repeat(30));
        assert_eq!(
            check_password(&long, "bob", &p),
            vec![
                TooLong,
                NeedsUpper,
                NeedsDigit,
                NeedsSymbol,
                ContainsLoginName
            ]
        );
    }

    #[test]
    fn display_has_no_secret() {
        let all = [
            TooShort,
            TooLong,
            NeedsUpper,
            NeedsLower,
            NeedsDigit,
            NeedsSymbol,
            ContainsLoginName,
        ];
        for problem in all {
            let text = problem.to_string();
            assert!(text.starts_with("password "), "{text}");
            assert!(!text.contains("alice"));
        }
    }
}
