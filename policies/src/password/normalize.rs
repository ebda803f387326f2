//! The one spelling of a password that is measured, checked and hashed: Unicode NFKC.
//!
//! The same password can arrive as different code points: full-width "ｐａｓｓ" from a CJK input
//! method, a precomposed "é" from one keyboard and "e" + combining accent from another, "ﬁ" as
//! one ligature. NIST SP 800-63B rev. 4 (§3.1.1.2) allows normalising with NFKC or NFKD before
//! hashing provided every password is normalised the same way; NFKC folds all of the above
//! into what a person means, so a password typed on the school's desktop also works on a phone.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// `password` in NFKC. Borrowed when it already is (nearly every password), so the check on
/// the login path costs no allocation.
///
/// Applied before any length or composition rule and before hashing or verifying; nothing else
/// is changed (no trimming, no case folding, no space collapsing), since every other
/// transformation would make distinct passwords equal.
pub fn normalize(password: &str) -> Cow<'_, str> {
    match is_nfkc_quick(password.chars()) {
        IsNormalized::Yes => Cow::Borrowed(password),
        IsNormalized::No | IsNormalized::Maybe => {
            let normal: String = password.nfkc().collect();
            if normal == password {
                Cow::Borrowed(password)
            } else {
                Cow::Owned(normal)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_cjk_are_left_alone_and_borrowed() {
        for p in [
            "correct horse",
            "我的密碼真的很安全",
            "",
            "  two  spaces  ",
            "Pass\tword",
        ] {
            assert!(matches!(normalize(p), Cow::Borrowed(s) if s == p), "{p:?}");
        }
    }

    #[test]
    fn compatibility_forms_fold() {
        assert_eq!(normalize("ｐａｓｓｗｏｒｄ"), "password");
        assert_eq!(normalize("ＰＡＳＳ１２３"), "PASS123");
        assert_eq!(normalize("\u{FB01}le"), "file");
        // Ideographic space is a compatibility form of the ASCII space.
        assert_eq!(normalize("a\u{3000}b"), "a b");
        // Half-width katakana become full-width.
        assert_eq!(normalize("ｶﾀｶﾅ"), "カタカナ");
    }

    #[test]
    fn canonical_equivalents_compose() {
        assert_eq!(normalize("e\u{301}cole"), "\u{e9}cole");
        assert_eq!(normalize("\u{e9}cole"), "\u{e9}cole");
        assert!(matches!(normalize("\u{e9}cole"), Cow::Borrowed(_)));
    }

    #[test]
    fn case_is_kept() {
        assert_eq!(normalize("Ｐａｓｓ"), "Pass");
        assert_ne!(normalize("PASS"), normalize("pass"));
    }

    #[test]
    fn idempotent() {
        for p in ["ｐａｓｓ", "e\u{301}", "\u{FB01}", "ﷺ", "abc"] {
            let once = normalize(p).into_owned();
            assert_eq!(normalize(&once), once);
        }
    }
}
