//! The one canonical spelling of a login name, so accounts and lockout counters agree on a key.

/// Canonical form of a login name: surrounding whitespace trimmed, Unicode lowercase.
///
/// Every place that keys something by login name (account lookup, lockout counters, activity
/// log) must use this, otherwise "Alice", "alice " and "ALICE" would each get their own three
/// wrong-password attempts and the lockout rule could be sidestepped.
pub fn canonical_login_name(name: &str) -> String {
    name.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::canonical_login_name;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(canonical_login_name("  Alice\t"), "alice");
        assert_eq!(canonical_login_name("ALICE"), "alice");
        assert_eq!(canonical_login_name("alice"), "alice");
        assert_eq!(
            canonical_login_name("\n Bob.Chen@School.EDU.tw \r\n"),
            "bob.chen@school.edu.tw"
        );
    }

    #[test]
    fn keeps_inner_whitespace() {
        assert_eq!(canonical_login_name(" A  B "), "a  b");
    }

    #[test]
    fn unicode_lowercase() {
        assert_eq!(canonical_login_name("ÉCOLE"), "école");
        assert_eq!(canonical_login_name("ΣΩ"), "σω");
        // CJK has no case and is left alone.
        assert_eq!(canonical_login_name(" 王小明 "), "王小明");
        // Unicode whitespace (ideographic space) is trimmed too.
        assert_eq!(canonical_login_name("\u{3000}Admin\u{3000}"), "admin");
    }

    #[test]
    fn empty_and_blank() {
        assert_eq!(canonical_login_name(""), "");
        assert_eq!(canonical_login_name("   "), "");
    }

    #[test]
    fn idempotent() {
        for n in ["  Alice ", "ÉCOLE", "x", "", "MiXeD.Case_01"] {
            let once = canonical_login_name(n);
            assert_eq!(canonical_login_name(&once), once);
        }
    }
}
