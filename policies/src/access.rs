//! Per-site access rules: which paths are open, which need a login, which need a role.

use crate::path::NormalizedPath;

/// What a path requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not (public pages, the legacy app's static assets).
    Anonymous,
    /// Any fully authenticated user.
    Authenticated,
    /// A fully authenticated user holding at least one of these roles.
    Roles(Vec<String>),
    /// Nobody; the gateway refuses the path outright.
    Deny,
}

/// One access rule: every path under `prefix` gets `access`, unless a longer rule says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Path prefix, starting with '/'. Matches at segment boundaries only. A prefix that does
    /// not start with '/' can never match a normalised path.
    pub prefix: String,
    /// What paths under the prefix require.
    pub access: Access,
}

/// A rule prepared for matching.
#[derive(Debug, Clone)]
struct Compiled {
    /// The prefix with any trailing '/' removed, so "/public" and "/public/" behave alike and
    /// "/" becomes "" (which matches every path).
    stem: String,
    access: Access,
}

/// A site's access rules, ready for lookups.
#[derive(Debug, Clone)]
pub struct AccessRules {
    /// Longest stem first, so the first match is the most specific one.
    rules: Vec<Compiled>,
    default: Access,
    case_insensitive: bool,
}

impl AccessRules {
    /// Prepare `rules`; paths that match none get `default`.
    ///
    /// `case_insensitive`: legacy IIS/ASP.NET apps serve /Admin and /admin alike, so for them
    /// rules must match both (ASCII case folding of prefix and path); otherwise "/ADMIN" would
    /// slip past a rule on "/admin" and still reach the admin pages.
    /// True for sites served the Windows way (paths compared without regard to case).
    pub fn case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    pub fn new(rules: Vec<Rule>, default: Access, case_insensitive: bool) -> Self {
        let mut rules: Vec<Compiled> = rules
            .into_iter()
            .map(|r| Compiled {
                stem: r.prefix.trim_end_matches('/').to_owned(),
                access: r.access,
            })
            .collect();
        // Stable sort: among equally long prefixes the rule listed first wins.
        rules.sort_by_key(|r| std::cmp::Reverse(r.stem.len()));
        AccessRules {
            rules,
            default,
            case_insensitive,
        }
    }

    /// The access required for `path`: the longest matching prefix wins, a prefix matching only
    /// at a segment boundary ("/public" matches "/public", "/public/" and "/public/x" but not
    /// "/publicity"); a prefix ending in '/' also matches the path without that slash. No match
    /// gives the default.
    pub fn lookup(&self, path: &NormalizedPath) -> &Access {
        let path = path.as_str().as_bytes();
        self.rules
            .iter()
            .find(|r| self.matches(r.stem.as_bytes(), path))
            .map_or(&self.default, |r| &r.access)
    }

    fn matches(&self, stem: &[u8], path: &[u8]) -> bool {
        let Some(head) = path.get(..stem.len()) else {
            return false;
        };
        let same = if self.case_insensitive {
            head.eq_ignore_ascii_case(stem)
        } else {
            head == stem
        };
        same && matches!(path.get(stem.len()), None | Some(b'/'))
    }
}

/// The outcome of checking a request against its path's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Proxy the request.
    Allow,
    /// Send the user to the login page first.
    NeedLogin,
    /// Refuse: logging in (again) would not help.
    Forbidden,
}

/// Decide a request. `roles`: `None` means no fully authenticated session; `Some(roles)` is the
/// fully authenticated user's roles. Role names match exactly (case-sensitive), because they
/// come from the gateway's own account store, not from user input.
pub fn decide(access: &Access, roles: Option<&[String]>) -> Decision {
    match (access, roles) {
        (Access::Anonymous, _) => Decision::Allow,
        (Access::Deny, _) => Decision::Forbidden,
        (Access::Authenticated | Access::Roles(_), None) => Decision::NeedLogin,
        (Access::Authenticated, Some(_)) => Decision::Allow,
        (Access::Roles(wanted), Some(held)) => {
            if wanted.iter().any(|w| held.contains(w)) {
                Decision::Allow
            } else {
                Decision::Forbidden
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::normalize;

    fn rule(prefix: &str, access: Access) -> Rule {
        Rule {
            prefix: prefix.to_owned(),
            access,
        }
    }

    fn roles(r: &[&str]) -> Access {
        Access::Roles(r.iter().map(|s| (*s).to_owned()).collect())
    }

    fn look<'a>(rules: &'a AccessRules, raw: &str) -> &'a Access {
        match normalize(raw) {
            Ok(p) => rules.lookup(&p),
            Err(e) => panic!("{raw:?}: {e}"),
        }
    }

    fn sample(case_insensitive: bool) -> AccessRules {
        AccessRules::new(
            vec![
                rule("/public", Access::Anonymous),
                rule("/public/secret", Access::Deny),
                rule("/admin/", roles(&["admin"])),
                rule("/static/", Access::Anonymous),
                rule("/admin/help", Access::Authenticated),
            ],
            Access::Authenticated,
            case_insensitive,
        )
    }

    #[test]
    fn segment_boundary() {
        let r = sample(false);
        assert_eq!(look(&r, "/public"), &Access::Anonymous);
        assert_eq!(look(&r, "/public/"), &Access::Anonymous);
        assert_eq!(look(&r, "/public/x"), &Access::Anonymous);
        assert_eq!(look(&r, "/public/x/y.css"), &Access::Anonymous);
        assert_eq!(look(&r, "/publicity"), &Access::Authenticated);
        assert_eq!(look(&r, "/publi"), &Access::Authenticated);
        assert_eq!(look(&r, "/"), &Access::Authenticated);
    }

    #[test]
    fn longest_prefix_wins() {
        let r = sample(false);
        assert_eq!(look(&r, "/public/secret"), &Access::Deny);
        assert_eq!(look(&r, "/public/secret/x"), &Access::Deny);
        assert_eq!(look(&r, "/public/secrets"), &Access::Anonymous);
        assert_eq!(look(&r, "/admin/help"), &Access::Authenticated);
        assert_eq!(look(&r, "/admin/help/a"), &Access::Authenticated);
        assert_eq!(look(&r, "/admin/helpdesk"), &roles(&["admin"]));
        assert_eq!(look(&r, "/admin/users"), &roles(&["admin"]));
    }

    #[test]
    fn order_of_rules_does_not_matter() {
        let mut list = vec![
            rule("/a/b/c", Access::Deny),
            rule("/a", Access::Anonymous),
            rule("/a/b", Access::Authenticated),
        ];
        for _ in 0..3 {
            list.rotate_left(1);
            let r = AccessRules::new(list.clone(), roles(&["x"]), false);
            assert_eq!(look(&r, "/a/x"), &Access::Anonymous);
            assert_eq!(look(&r, "/a/b/x"), &Access::Authenticated);
            assert_eq!(look(&r, "/a/b/c/x"), &Access::Deny);
            assert_eq!(look(&r, "/b"), &roles(&["x"]));
        }
    }

    #[test]
    fn trailing_slash_prefix_matches_bare_path() {
        let r = sample(false);
        assert_eq!(look(&r, "/admin"), &roles(&["admin"]));
        assert_eq!(look(&r, "/admin/"), &roles(&["admin"]));
        assert_eq!(look(&r, "/static"), &Access::Anonymous);
        assert_eq!(look(&r, "/statics"), &Access::Authenticated);
        assert_eq!(look(&r, "/administrator"), &Access::Authenticated);
    }

    #[test]
    fn root_prefix_matches_everything() {
        let r = AccessRules::new(
            vec![rule("/", Access::Deny), rule("/ok", Access::Anonymous)],
            Access::Anonymous,
            false,
        );
        assert_eq!(look(&r, "/"), &Access::Deny);
        assert_eq!(look(&r, "/x/y"), &Access::Deny);
        assert_eq!(look(&r, "/ok/y"), &Access::Anonymous);
    }

    #[test]
    fn no_rules_gives_default() {
        let r = AccessRules::new(vec![], Access::Deny, true);
        assert_eq!(look(&r, "/"), &Access::Deny);
        assert_eq!(look(&r, "/anything"), &Access::Deny);
    }

    #[test]
    fn case_sensitive_mode() {
        let r = sample(false);
        assert_eq!(look(&r, "/ADMIN/users"), &Access::Authenticated);
        assert_eq!(look(&r, "/Public"), &Access::Authenticated);
    }

    #[test]
    fn case_insensitive_mode() {
        let r = sample(true);
        assert_eq!(look(&r, "/ADMIN/users"), &roles(&["admin"]));
        assert_eq!(look(&r, "/Admin"), &roles(&["admin"]));
        assert_eq!(look(&r, "/PUBLIC/SECRET"), &Access::Deny);
        assert_eq!(look(&r, "/Public/x"), &Access::Anonymous);
        assert_eq!(look(&r, "/PUBLICITY"), &Access::Authenticated);
        // Upper-case rule prefixes fold too.
        let r = AccessRules::new(vec![rule("/Admin", Access::Deny)], Access::Anonymous, true);
        assert_eq!(look(&r, "/admin/x"), &Access::Deny);
        assert_eq!(look(&r, "/aDmIn"), &Access::Deny);
    }

    #[test]
    fn non_ascii_prefixes() {
        let r = AccessRules::new(vec![rule("/學籍", Access::Deny)], Access::Anonymous, true);
        assert_eq!(look(&r, "/%E5%AD%B8%E7%B1%8D/x"), &Access::Deny);
        assert_eq!(look(&r, "/學籍"), &Access::Deny);
        assert_eq!(look(&r, "/學"), &Access::Anonymous);
        // A path that ends in the middle of a multi-byte prefix character must not panic.
        let r = AccessRules::new(vec![rule("/éa", Access::Deny)], Access::Anonymous, true);
        assert_eq!(look(&r, "/é"), &Access::Anonymous);
    }

    #[test]
    fn bypass_attempts_hit_the_rule() {
        let r = sample(true);
        for raw in [
            "/public/../admin/users",
            "/public/..%2fadmin/users",
            "/public\\..\\admin",
            "/admin;jsessionid=1/users",
            "//admin//users",
            "/ADMIN%2fusers",
            "/public/%2e%2e/admin",
            "/public/..;/admin",
        ] {
            assert_eq!(look(&r, raw), &roles(&["admin"]), "{raw:?}");
        }
    }

    #[test]
    fn decide_anonymous_and_deny() {
        let held = vec!["admin".to_owned()];
        assert_eq!(decide(&Access::Anonymous, None), Decision::Allow);
        assert_eq!(decide(&Access::Anonymous, Some(&held)), Decision::Allow);
        assert_eq!(decide(&Access::Anonymous, Some(&[])), Decision::Allow);
        assert_eq!(decide(&Access::Deny, None), Decision::Forbidden);
        assert_eq!(decide(&Access::Deny, Some(&held)), Decision::Forbidden);
    }

    #[test]
    fn decide_authenticated() {
        assert_eq!(decide(&Access::Authenticated, None), Decision::NeedLogin);
        assert_eq!(decide(&Access::Authenticated, Some(&[])), Decision::Allow);
        assert_eq!(
            decide(&Access::Authenticated, Some(&["teacher".to_owned()])),
            Decision::Allow
        );
    }

    #[test]
    fn decide_roles() {
        let need = roles(&["admin", "registrar"]);
        let admin = vec!["admin".to_owned()];
        let both = vec!["teacher".to_owned(), "registrar".to_owned()];
        let teacher = vec!["teacher".to_owned()];
        let upper = vec!["Admin".to_owned()];
        assert_eq!(decide(&need, None), Decision::NeedLogin);
        assert_eq!(decide(&need, Some(&admin)), Decision::Allow);
        assert_eq!(decide(&need, Some(&both)), Decision::Allow);
        assert_eq!(decide(&need, Some(&teacher)), Decision::Forbidden);
        assert_eq!(decide(&need, Some(&[])), Decision::Forbidden);
        assert_eq!(decide(&need, Some(&upper)), Decision::Forbidden);
        // An empty role list admits no one, but still asks anonymous users to log in first.
        let nobody = Access::Roles(vec![]);
        assert_eq!(decide(&nobody, None), Decision::NeedLogin);
        assert_eq!(decide(&nobody, Some(&admin)), Decision::Forbidden);
    }
}
