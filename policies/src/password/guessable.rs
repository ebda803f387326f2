//! Whether a password is common or easy to guess, estimated with zxcvbn.
//!
//! NIST SP 800-63B rev. 4 (§3.1.1.2) asks verifiers to compare new passwords against a
//! blocklist of commonly used, expected or compromised values (dictionary words, repetitive or
//! sequential characters, context-specific words such as the user name). zxcvbn does all of
//! these with its built-in frequency lists (passwords, English words, names), keyboard
//! patterns, sequences, repeats, dates and l33t substitutions, and weighs what is left, so
//! "password", "12345678", "qwertyuiop" and "Tr0ub4dor" are caught while a long passphrase of
//! ordinary words passes.

use zxcvbn::zxcvbn;

use super::normalize::normalize;

/// How much of the password, and of each user input, zxcvbn looks at.
///
/// zxcvbn's matchers try every substring against every dictionary and its scoring searches
/// over all ways to split the password, so its work grows faster than the length: bounded to
/// 100 characters it takes milliseconds, while the 1024 characters the policy may allow would
/// let one `account import` row (or, were it ever checked online, one request) cost a core for
/// far longer. Nothing weak slips through: a password is at least as hard to guess as its
/// first 100 characters, so if those score high enough the whole does too. (zxcvbn 3 also cuts
/// at 100 itself; doing it here keeps the bound ours and applies it to the user inputs.)
pub const ZXCVBN_INPUT_LIMIT: usize = 100;

/// Shortest word of a user input passed to zxcvbn on its own; shorter ones ("li", "wu") occur
/// in too many good passwords by chance.
const MIN_INPUT_WORD: usize = 3;

/// True when zxcvbn scores `password` (already NFKC) below `min_strength` (0 to 4), given
/// words about the user (login name, display name, e-mail local part) that make a password
/// easy to guess for anyone who knows them.
pub(super) fn is_guessable(password: &str, user_inputs: &[&str], min_strength: u8) -> bool {
    let password: String = password.chars().take(ZXCVBN_INPUT_LIMIT).collect();
    let inputs = context_words(user_inputs);
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    u8::from(zxcvbn(&password, &inputs).score()) < min_strength
}

/// Each user input, normalised, lowercased and bounded, and also each of its words (split at
/// anything that is not a letter or digit): "Chen Mei-Ling" gives "chen mei-ling", "chen",
/// "mei", "ling" and "chenmeiling", so "meiling2024" is judged by what it really adds.
fn context_words(user_inputs: &[&str]) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut push = |word: &str| {
        if word.chars().count() >= MIN_INPUT_WORD && !words.iter().any(|w| w == word) {
            words.push(word.to_owned());
        }
    };
    for input in user_inputs {
        let input: String = normalize(input.trim())
            .to_lowercase()
            .chars()
            .take(ZXCVBN_INPUT_LIMIT)
            .collect();
        push(&input);
        for word in input.split(|c: char| !c.is_alphanumeric()) {
            push(word);
        }
        // The words joined, for "Mei-Ling" typed as "meiling"; and the Latin ones alone, for
        // "陳美玲 Chen Mei-Ling" typed as "chenmeiling".
        let joined: String = input.chars().filter(|c| c.is_alphanumeric()).collect();
        push(&joined);
        let latin: String = input.chars().filter(char::is_ascii_alphanumeric).collect();
        push(&latin);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_words_split_and_join() {
        assert_eq!(
            context_words(&["Chen Mei-Ling", "t.chen", "  ", "li"]),
            [
                "chen mei-ling",
                "chen",
                "mei",
                "ling",
                "chenmeiling",
                "t.chen",
                "tchen"
            ]
        );
        assert_eq!(context_words(&["ＡＬＩＣＥ"]), ["alice"]);
        assert_eq!(
            context_words(&["陳美玲 Chen"]),
            ["陳美玲 chen", "陳美玲", "chen", "陳美玲chen"]
        );
        assert!(context_words(&[]).is_empty());
    }

    #[test]
    fn inputs_are_bounded() {
        let long = "x".repeat(1000);
        assert!(context_words(&[&long]).iter().all(|w| w.len() <= 100));
    }

    #[test]
    fn long_passwords_are_judged_by_their_start() {
        // A strong start makes the whole strong, whatever follows.
        let strong = format!("violet-anchor-mosaic-tundra {}", "a".repeat(2000));
        assert!(!is_guessable(&strong, &[], 4));
        // Only the first 100 characters reach zxcvbn: this is 100 "a"s as far as it knows.
        let weak = format!("{}violet-anchor-mosaic-tundra", "a".repeat(100));
        assert!(is_guessable(&weak, &[], 2));
    }

    #[test]
    fn user_inputs_make_a_password_guessable() {
        // Fine for a stranger, a first guess for anyone who knows Chen Mei-Ling.
        assert!(!is_guessable("chenmeiling", &[], 2));
        assert!(is_guessable("chenmeiling", &["Chen Mei-Ling"], 2));
        assert!(is_guessable(
            "chenmeiling",
            &["ＣＨＥＮ ＭＥＩ－ＬＩＮＧ"],
            2
        ));
    }

    #[test]
    fn strength_levels() {
        // zxcvbn 3.1 scores this 3: enough for 3, not for 4.
        assert!(!is_guessable("meiling19880412", &[], 3));
        assert!(is_guessable("meiling19880412", &[], 4));
        assert!(is_guessable("", &[], 1));
    }
}
