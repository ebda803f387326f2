//! Operator-configurable password rules and the check of a candidate password against them,
//! after NIST SP 800-63B rev. 4 §3.1.1.2: length first (eight characters at least, since a
//! second factor is always required here; 64 or more allowed), every Unicode character
//! accepted and normalised ([`normalize`]), no composition rules unless the operator asks for
//! them, and a check against common and guessable passwords ([`guessable`]).
//!
//! # Layout
//!
//! - `mod.rs`: [`PasswordPolicy`], [`PasswordProblem`] and the checks.
//! - [`normalize`]: the NFKC spelling that is measured and hashed.
//! - [`guessable`]: the zxcvbn estimate behind [`PasswordProblem::TooCommon`].

pub mod guessable;
pub mod normalize;

use std::fmt;
use std::ops::RangeInclusive;

use crate::login_name::canonical_login_name;

pub use self::normalize::normalize;

/// Shortest login name that is checked for inside passwords; shorter names ("li", "wu") occur in
/// too many good passwords by chance.
const MIN_LOGIN_NAME_CHECKED: usize = 3;

/// The lowest `min_length` an operator may configure: NIST SP 800-63B rev. 4 allows eight
/// characters only for a password used with a second factor, which Menshen always requires.
pub const MIN_LENGTH_FLOOR: usize = 8;

/// The lowest `max_length` an operator may configure: NIST SP 800-63B rev. 4 says verifiers
/// SHOULD allow at least 64 characters, so passphrases fit.
pub const MAX_LENGTH_FLOOR: usize = 64;

/// The zxcvbn scores `min_strength` may take. 0 would accept anything; 4 ("more than 10^10
/// guesses") is as strict as zxcvbn gets.
pub const MIN_STRENGTH_RANGE: RangeInclusive<u8> = 1..=4;

/// Operator-configurable password rules (the ministry raised the system's security grade and its
/// password rules, and may raise them again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (Unicode scalar values, after NFKC); at least [`MIN_LENGTH_FLOOR`].
    pub min_length: usize,
    /// Most characters (after NFKC); bounds hashing cost and stops absurd inputs. At least
    /// [`MAX_LENGTH_FLOOR`].
    pub max_length: usize,
    /// At least one uppercase letter (Unicode).
    pub require_upper: bool,
    /// At least one lowercase letter (Unicode).
    pub require_lower: bool,
    /// At least one ASCII digit 0-9.
    pub require_digit: bool,
    /// At least one character that is neither a letter, a digit nor whitespace.
    pub require_symbol: bool,
    /// Refuse common and guessable passwords (zxcvbn score below `min_strength`), the blocklist
    /// NIST requires; on by default.
    pub reject_common: bool,
    /// The zxcvbn score (0 to 4) a password must reach when `reject_common` is on; within
    /// [`MIN_STRENGTH_RANGE`]. 2 ("more than 10^6 guesses") stops everything on the common
    /// lists and keyboard walks without making people fight the form; the lockout after three
    /// wrong passwords and the second factor do the rest.
    pub min_strength: u8,
}

impl Default for PasswordPolicy {
    /// Eight to 128 characters, no composition rules, common passwords refused: NIST SP
    /// 800-63B rev. 4 favours length and a blocklist over composition, which mostly produces
    /// "Password1!".
    fn default() -> Self {
        PasswordPolicy {
            min_length: MIN_LENGTH_FLOOR,
            max_length: 128,
            require_upper: false,
            require_lower: false,
            require_digit: false,
            require_symbol: false,
            reject_common: true,
            min_strength: 2,
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
    /// Common, or easy to guess from patterns or from the user's own names (zxcvbn).
    TooCommon,
}

impl PasswordProblem {
    /// Whether an administrator may set such a password anyway (`menshen account
    /// --allow-weak`), e.g. a temporary password read out on the phone. Length never is: the
    /// maximum bounds the work of every later login, and the minimum is NIST's floor.
    pub fn is_waivable(self) -> bool {
        match self {
            PasswordProblem::TooShort | PasswordProblem::TooLong => false,
            PasswordProblem::NeedsUpper
            | PasswordProblem::NeedsLower
            | PasswordProblem::NeedsDigit
            | PasswordProblem::NeedsSymbol
            | PasswordProblem::ContainsLoginName
            | PasswordProblem::TooCommon => true,
        }
    }
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
            PasswordProblem::TooCommon => {
                "password is too common or easy to guess (try a longer phrase of unrelated words)"
            }
        })
    }
}

/// [`check_password_in_context`] with the login name as the only thing known about the user.
pub fn check_password(
    password: &str,
    login_name: &str,
    policy: &PasswordPolicy,
) -> Vec<PasswordProblem> {
    check_password_in_context(password, login_name, &[], policy)
}

/// Check `password` against `policy`; an empty result means it is acceptable. Problems come in
/// the order of [`PasswordProblem`]'s variants, every failing rule listed so the page can show
/// them all at once.
///
/// The password is measured in its [`normalize`]d (NFKC) form, the form that is hashed, and
/// length counts Unicode scalar values, not bytes, so a Chinese passphrase is not judged three
/// times longer than it is. `ContainsLoginName` applies when the canonical login name (see
/// [`canonical_login_name`]) has at least three characters and appears in the password,
/// compared without case. `TooCommon` (when `policy.reject_common`) uses zxcvbn with the login
/// name and `other_inputs` (display name, e-mail local part, …) as words an attacker who knows
/// the user would try first.
pub fn check_password_in_context(
    password: &str,
    login_name: &str,
    other_inputs: &[&str],
    policy: &PasswordPolicy,
) -> Vec<PasswordProblem> {
    let password = normalize(password);
    let password = password.as_ref();
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
    let name = canonical_login_name(&normalize(login_name));
    if name.chars().count() >= MIN_LOGIN_NAME_CHECKED && password.to_lowercase().contains(&name) {
        problems.push(PasswordProblem::ContainsLoginName);
    }
    if policy.reject_common {
        let mut inputs = Vec::with_capacity(other_inputs.len() + 1);
        inputs.push(name.as_str());
        inputs.extend_from_slice(other_inputs);
        if guessable::is_guessable(password, &inputs, policy.min_strength) {
            problems.push(PasswordProblem::TooCommon);
        }
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

    /// The defaults without the zxcvbn check, for the rules that do not depend on it.
    fn lenient() -> PasswordPolicy {
        PasswordPolicy {
            reject_common: false,
            ..PasswordPolicy::default()
        }
    }

    fn strict() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            max_length: 20,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_symbol: true,
            reject_common: false,
            min_strength: 2,
        }
    }

    const ALL: [PasswordProblem; 8] = [
        TooShort,
        TooLong,
        NeedsUpper,
        NeedsLower,
        NeedsDigit,
        NeedsSymbol,
        ContainsLoginName,
        TooCommon,
    ];

    #[test]
    fn default_policy() {
        let p = PasswordPolicy::default();
        assert_eq!(p.min_length, 8);
        assert_eq!(p.max_length, 128);
        assert!(p.reject_common);
        assert_eq!(p.min_strength, 2);
        assert!(!p.require_upper && !p.require_lower && !p.require_digit && !p.require_symbol);
        assert!(p.min_length >= MIN_LENGTH_FLOOR && p.max_length >= MAX_LENGTH_FLOOR);
        assert!(MIN_STRENGTH_RANGE.contains(&p.min_strength));
        assert!(check_password("correct horse battery", "alice", &p).is_empty());
        assert!(check_password("violet anchor mosaic tundra", "bob", &p).is_empty());
        assert_eq!(check_password("aaaaaaaaaa", "bob", &p), vec![TooCommon]);
        assert_eq!(check_password("t9#Kq2v", "bob", &p), vec![TooShort]);
        assert_eq!(check_password("", "bob", &p), vec![TooShort, TooCommon]);
    }

    #[test]
    fn length_bounds_are_inclusive() {
        let p = lenient();
        assert!(check_password(&"x".repeat(128), "bob", &p).is_empty());
        assert_eq!(check_password(&"x".repeat(129), "bob", &p), vec![TooLong]);
        assert!(check_password(&"x".repeat(8), "bob", &p).is_empty());
        assert_eq!(check_password(&"x".repeat(7), "bob", &p), vec![TooShort]);
        let p = PasswordPolicy {
            max_length: 64,
            ..lenient()
        };
        assert!(check_password(&"x".repeat(64), "bob", &p).is_empty());
        assert_eq!(check_password(&"x".repeat(65), "bob", &p), vec![TooLong]);
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let p = lenient();
        // Seven CJK characters: 21 bytes but still too short.
        assert_eq!(check_password("我的密碼安全嗎", "bob", &p), vec![TooShort]);
        assert!(check_password("我的密碼很安全嗎", "bob", &p).is_empty());
        let p = PasswordPolicy {
            max_length: 10,
            ..lenient()
        };
        assert!(check_password(&"學".repeat(10), "bob", &p).is_empty());
        assert_eq!(check_password(&"學".repeat(11), "bob", &p), vec![TooLong]);
    }

    #[test]
    fn length_is_measured_after_nfkc() {
        let p = PasswordPolicy {
            max_length: 64,
            ..lenient()
        };
        // The ligature "ﬁ" is one character that NFKC spells as two.
        assert_eq!(
            check_password("\u{FB01}\u{FB01}\u{FB01}", "bob", &p),
            vec![TooShort]
        );
        assert!(check_password("\u{FB01}\u{FB01}\u{FB01}\u{FB01}", "bob", &p).is_empty());
        assert!(check_password(&"\u{FB01}".repeat(32), "bob", &p).is_empty());
        assert_eq!(
            check_password(&"\u{FB01}".repeat(33), "bob", &p),
            vec![TooLong]
        );
        // A combining accent composes with its letter: "e\u{301}" is one character.
        let composed = "e\u{301}".repeat(8);
        assert_eq!(composed.chars().count(), 16);
        assert!(check_password(&composed, "bob", &p).is_empty());
        assert_eq!(
            check_password(&"e\u{301}".repeat(65), "bob", &p),
            vec![TooLong]
        );
    }

    #[test]
    fn full_width_forms_are_the_same_password() {
        assert_eq!(normalize("ｐａｓｓｗｏｒｄ"), "password");
        let p = PasswordPolicy::default();
        // zxcvbn alone would score the full-width spelling as "not common": it must see
        // what is hashed.
        assert_eq!(
            check_password("ｐａｓｓｗｏｒｄ", "bob", &p),
            vec![TooCommon]
        );
        assert_eq!(
            check_password("ｐａｓｓｗｏｒｄ", "bob", &p),
            check_password("password", "bob", &p)
        );
        assert_eq!(
            check_password("ＭＹ－ＡＬＩＣＥ－ＰＡＳＳＷＯＲＤ", "alice", &lenient()),
            vec![ContainsLoginName]
        );
        assert_eq!(
            check_password("my-alice-password", "ａｌｉｃｅ", &lenient()),
            vec![ContainsLoginName]
        );
    }

    #[test]
    fn common_passwords_are_rejected() {
        let p = PasswordPolicy::default();
        for common in [
            "password",
            "12345678",
            "qwertyuiop",
            "iloveyou",
            "abcdefghij",
            "P@ssw0rd!",
            "1qaz2wsx3edc",
            "學學學學學學學學學學",
        ] {
            assert!(
                check_password(common, "bob", &p).contains(&TooCommon),
                "{common:?}"
            );
        }
        for fine in [
            "orbit-lantern-basalt-fennel",
            "violet anchor mosaic tundra",
            "correct-horse-42",
            "我的密碼真的很安全了嗎",
        ] {
            assert!(check_password(fine, "bob", &p).is_empty(), "{fine:?}");
        }
    }

    #[test]
    fn reject_common_can_be_turned_off() {
        assert!(check_password("password", "bob", &lenient()).is_empty());
        assert!(check_password("12345678", "bob", &lenient()).is_empty());
    }

    #[test]
    fn min_strength_is_the_zxcvbn_score() {
        let at = |min_strength| PasswordPolicy {
            min_strength,
            ..PasswordPolicy::default()
        };
        // zxcvbn 3.1 scores "meiling19880412" 3.
        assert!(check_password("meiling19880412", "bob", &at(3)).is_empty());
        assert_eq!(
            check_password("meiling19880412", "bob", &at(4)),
            vec![TooCommon]
        );
        assert!(check_password("orbit-lantern-basalt-fennel", "bob", &at(4)).is_empty());
    }

    #[test]
    fn context_inputs_count() {
        let p = PasswordPolicy::default();
        assert!(check_password("chenmeiling", "t.chen", &p).is_empty());
        assert_eq!(
            check_password_in_context("chenmeiling", "t.chen", &["陳美玲 Chen Mei-Ling"], &p),
            vec![TooCommon]
        );
        assert_eq!(
            check_password_in_context("chenmeiling", "t.chen", &["chenmeiling"], &p),
            vec![TooCommon]
        );
        // The login name itself is a user input even below the three-character rule.
        assert!(check_password_in_context("x", "x", &[], &lenient()).contains(&TooShort));
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
        // Composition does not make a common password good.
        let p = PasswordPolicy {
            reject_common: true,
            ..strict()
        };
        assert_eq!(check_password("P@ssw0rd!", "bob", &p), vec![TooCommon]);
    }

    #[test]
    fn symbols_and_whitespace() {
        let p = PasswordPolicy {
            require_symbol: true,
            min_length: 1,
            ..lenient()
        };
        for ok in ["a b-c", "x_y", "a.b", "~", "€", "a，b", "🔑"] {
            assert!(check_password(ok, "bob", &p).is_empty(), "{ok:?}");
        }
        // Spaces, letters (CJK included) and digits are not symbols; nor is the full-width
        // "１２３", which NFKC makes ASCII digits.
        for bad in ["a b c", "學籍", "abc123", "１２３"] {
            assert_eq!(check_password(bad, "bob", &p), vec![NeedsSymbol], "{bad:?}");
        }
    }

    #[test]
    fn full_width_digits_count_as_digits_after_nfkc() {
        let p = PasswordPolicy {
            require_digit: true,
            min_length: 1,
            ..lenient()
        };
        assert!(check_password("a0", "bob", &p).is_empty());
        assert!(check_password("a１", "bob", &p).is_empty());
        // Other scripts' digits are not NFKC-equivalent to ASCII ones.
        assert_eq!(check_password("a٣", "bob", &p), vec![NeedsDigit]);
    }

    #[test]
    fn unicode_case() {
        let p = PasswordPolicy {
            require_upper: true,
            require_lower: true,
            min_length: 1,
            ..lenient()
        };
        assert!(check_password("Éé", "bob", &p).is_empty());
        assert_eq!(
            check_password("學籍", "bob", &p),
            vec![NeedsUpper, NeedsLower]
        );
    }

    #[test]
    fn contains_login_name() {
        let p = lenient();
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
        // With the zxcvbn check on, a password that is little more than the name fails both.
        assert_eq!(
            check_password("teacher2024", "teacher", &PasswordPolicy::default()),
            vec![ContainsLoginName, TooCommon]
        );
    }

    #[test]
    fn short_login_names_are_not_checked() {
        let p = lenient();
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
        let p = PasswordPolicy {
            reject_common: true,
            ..strict()
        };
        let long = format!("bob{}", "b".repeat(30));
        assert_eq!(
            check_password(&long, "bob", &p),
            vec![
                TooLong,
                NeedsUpper,
                NeedsDigit,
                NeedsSymbol,
                ContainsLoginName,
                TooCommon
            ]
        );
    }

    #[test]
    fn only_length_cannot_be_waived() {
        for problem in ALL {
            assert_eq!(
                problem.is_waivable(),
                !matches!(problem, TooShort | TooLong),
                "{problem:?}"
            );
        }
        assert!(TooCommon.is_waivable());
        assert!(ContainsLoginName.is_waivable());
        assert!(NeedsSymbol.is_waivable());
    }

    #[test]
    fn display_has_no_secret() {
        for problem in ALL {
            let text = problem.to_string();
            assert!(text.starts_with("password "), "{text}");
            assert!(!text.contains("alice"));
        }
    }
}
