//! Validation of the post-login return target (`rd`), so login cannot become an open redirect.
//!
//! Without single sign-on the target is a local path ([`safe_return_target`]). With a portal
//! it may also be an absolute URL to one of the gateway's own hosts ([`safe_return_url`]):
//! the caller decides which origins are its own, this module makes sure the text cannot mean
//! anything else to a browser.

use percent_encoding::percent_decode;

use crate::path::normalize;

/// Longest return target accepted; real page addresses are far shorter.
const MAX_TARGET_LEN: usize = 2048;

/// How many rounds of percent-decoding are inspected: whoever later reads the target (browser,
/// legacy app, another redirect hop) may decode it again, so each layer must be safe.
const DECODE_ROUNDS: usize = 3;

/// Menshen's own reserved path space; returning there after login would loop.
const RESERVED_ROOT: &str = "/.menshen";

/// The `rd` return target after login must be a path on this same host, never another site
/// (open redirect). Returns `Some(rd)` unchanged when safe, `None` otherwise; callers then use
/// "/".
///
/// Accepted only when: non-empty; at most 2048 bytes; starts with exactly one '/' (the second
/// character is neither '/' nor '\', which browsers read as "//", a scheme-relative URL); no '\'
/// anywhere; no ASCII control character, space or tab (browsers strip tabs and newlines, turning
/// "/\t/evil" into "//evil"). The target as given and each percent-decoded form (decoded repeatedly, up
/// to three times) must also not start with "//" or "/\", not contain a control character, and not contain
/// "://" before the first '?'. Finally the path part, normalised with [`normalize`], must be
/// valid and not lie inside Menshen's reserved "/.menshen" space (that would loop back to login).
pub fn safe_return_target(rd: &str) -> Option<&str> {
    if rd.is_empty() || rd.len() > MAX_TARGET_LEN {
        return None;
    }
    let bytes = rd.as_bytes();
    if !rd.starts_with('/') || matches!(bytes.get(1), Some(b'/' | b'\\')) {
        return None;
    }
    if bytes
        .iter()
        .any(|&b| b == b'\\' || b == b' ' || b.is_ascii_control())
    {
        return None;
    }

    if !decoded_form_is_safe(bytes) {
        return None;
    }
    let mut form: Vec<u8> = bytes.to_vec();
    for _ in 0..DECODE_ROUNDS {
        let decoded: Vec<u8> = percent_decode(&form).collect();
        if decoded == form {
            break;
        }
        if !decoded_form_is_safe(&decoded) {
            return None;
        }
        form = decoded;
    }

    let path_part = rd.split(['?', '#']).next().unwrap_or("");
    let path = normalize(path_part).ok()?;
    if in_reserved_space(path.as_str()) {
        return None;
    }
    Some(rd)
}

/// The origin of an absolute return target: scheme, lowercase host and the port as written
/// (`None` when the URL names none, i.e. the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    pub host: String,
    pub port: Option<u16>,
}

impl Origin {
    /// `host` or `host:port`, the form a browser sends in `Host` for this origin.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// `https://host[:port]`.
    pub fn to_url_prefix(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }
}

/// Where to go after login, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnTarget {
    /// A path (with query) on the host that served the login.
    Local(String),
    /// A path on another of the gateway's hosts. `path` passed [`safe_return_target`].
    Absolute { origin: Origin, path: String },
}

impl ReturnTarget {
    /// The target as a URL or path, in the one canonical spelling this module accepts.
    pub fn to_url(&self) -> String {
        match self {
            ReturnTarget::Local(path) => path.clone(),
            ReturnTarget::Absolute { origin, path } => {
                format!("{}{path}", origin.to_url_prefix())
            }
        }
    }
}

/// Validates a return target that may be an absolute URL (single sign-on). A local path is
/// checked by [`safe_return_target`]. An absolute URL is accepted only when:
/// - it starts with exactly `https://` or `http://` (lowercase, as the gateway writes them);
/// - the whole text has no `\`, space, control character or `%` in the authority, and no
///   `@` there either (userinfo: `https://registry@evil`), so no browser can read another
///   host out of it;
/// - the host is a DNS name (letters, digits, `-`, `.`; no trailing dot) or an IP literal, the
///   port (if any) is a number from 1 to 65535;
/// - `accept` says the origin is one of the gateway's own (configured site or the portal, on a
///   port and scheme the caller allows);
/// - the path part (empty means `/`) passes [`safe_return_target`].
///
/// The result is rebuilt from the parsed parts, so what is used later is exactly what was
/// checked.
pub fn safe_return_url(rd: &str, accept: impl Fn(&Origin) -> bool) -> Option<ReturnTarget> {
    if rd.starts_with('/') {
        return safe_return_target(rd).map(|p| ReturnTarget::Local(p.to_string()));
    }
    if rd.len() > MAX_TARGET_LEN {
        return None;
    }
    let (https, rest) = if let Some(rest) = rd.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = rd.strip_prefix("http://") {
        (false, rest)
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let origin = parse_authority(authority, https)?;
    if !accept(&origin) {
        return None;
    }
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('/') => safe_return_target(p)?.to_string(),
        // "?x" or "#x" directly after the host.
        p => safe_return_target(&format!("/{p}"))?.to_string(),
    };
    Some(ReturnTarget::Absolute { origin, path })
}

/// `host[:port]` of an absolute URL, refusing anything a browser might read differently.
fn parse_authority(authority: &str, https: bool) -> Option<Origin> {
    if authority.is_empty()
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return None;
    }
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let close = inner.find(']')?;
        let literal = &inner[..close];
        literal.parse::<std::net::Ipv6Addr>().ok()?;
        (&authority[..close + 2], &authority[close + 2..])
    } else {
        match authority.find(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        }
    };
    let port = match port {
        "" => None,
        p => {
            let digits = p.strip_prefix(':')?;
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let n: u16 = digits.parse().ok()?;
            if n == 0 {
                return None;
            }
            // The scheme's default port written out is the same origin without it.
            let default = if https { 443 } else { 80 };
            (n != default).then_some(n)
        }
    };
    if !host.starts_with('[') {
        let labels_ok = host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !labels_ok {
            return None;
        }
    }
    Some(Origin {
        https,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// Checks on one layer of the target: as given, or after some rounds of percent-decoding.
fn decoded_form_is_safe(form: &[u8]) -> bool {
    if form.starts_with(b"//") || form.starts_with(b"/\\") {
        return false;
    }
    if form.iter().any(|b| b.is_ascii_control()) {
        return false;
    }
    let before_query = form.split(|&b| b == b'?').next().unwrap_or(&[]);
    !before_query.windows(3).any(|w| w == b"://")
}

/// Whether a normalised path is Menshen's reserved space or under it. Compared without case
/// because a case-insensitive site would route "/.MENSHEN/" to the same place.
fn in_reserved_space(path: &str) -> bool {
    let p = path.as_bytes();
    let r = RESERVED_ROOT.as_bytes();
    p.get(..r.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(r))
        && matches!(p.get(r.len()), None | Some(b'/'))
}

#[cfg(test)]
mod tests {
    use super::{Origin, ReturnTarget, safe_return_target, safe_return_url};

    const ACCEPTED: &[&str] = &[
        "/",
        "/students",
        "/students/",
        "/students?id=1",
        "/a/b?x=https://evil.com",
        "/a/b?next=//evil.com",
        "/a/b?x=%2f%2fevil.com",
        "/%E5%AD%B8%E7%B1%8D",
        "/學籍/查詢",
        "/path#frag",
        "/path?q=1#frag",
        "/a%20b",
        "/a%2fb",
        "/a/./b",
        "/a/../b",
        "/.well-known/x",
        "/menshen/login",
        "/.menshenx/login",
        "/x/.menshen/login",
        "/Default.aspx?ReturnUrl=%2Fadmin",
        "/a:b@c",
        "/?",
        "/#",
        "/a//b",
    ];

    const REJECTED: &[&str] = &[
        "",
        "//evil.com",
        "/\\evil.com",
        "https://evil.com",
        "http:evil.com",
        "javascript:alert(1)",
        "/%2f%2fevil.com",
        "/%2F%2Fevil.com",
        "/%2f/evil.com",
        "/%5cevil.com",
        "/%5Cevil.com",
        "%2f%2fevil.com",
        "/%252f%252fevil.com",
        "/%25252f%25252fevil.com",
        "/\t/evil.com",
        "/\n/evil",
        "/\r\n/evil",
        "/x\u{7f}",
        "/x\u{0}",
        " /x",
        "/x y",
        "\\\\evil",
        "///evil",
        "/.menshen/login",
        "/.menshen/",
        "/.menshen",
        "/.MENSHEN/login",
        "/%2emenshen/login",
        "/a/../.menshen/login",
        "/x/..%2f.menshen/login",
        "/.menshen;x/login",
        "/a\\b",
        "/a/%0d%0aSet-Cookie:x",
        "/%00",
        "/%2500",
        "/x://evil.com",
        "/x%3a//evil.com",
        "/redirect/https%3A%2F%2Fevil.com",
        "/a%zz",
        "/a%C3",
        "evil.com",
        "?x=/",
        "#/x",
        ".",
        "./x",
        "../x",
    ];

    #[test]
    fn accepts_same_site_paths_unchanged() {
        for rd in ACCEPTED {
            assert_eq!(safe_return_target(rd), Some(*rd), "should accept {rd:?}");
        }
    }

    #[test]
    fn rejects_offsite_and_malformed_targets() {
        for rd in REJECTED {
            assert_eq!(safe_return_target(rd), None, "should reject {rd:?}");
        }
    }

    #[test]
    fn corpus_is_large_enough() {
        assert!(ACCEPTED.len() + REJECTED.len() >= 40);
    }

    #[test]
    fn length_limit() {
        let ok = format!("/{}", "a".repeat(2047));
        assert_eq!(safe_return_target(&ok), Some(ok.as_str()));
        let long = format!("/{}", "a".repeat(2048));
        assert_eq!(safe_return_target(&long), None);
    }

    #[test]
    fn decoding_depth_is_bounded() {
        // Four layers of encoding around "//" go beyond the three rounds inspected: the browser
        // sees a same-host path, and only a fourth successive decoder would ever see "//".
        let deep = "/%2525252f%2525252fevil.com";
        assert_eq!(safe_return_target(deep), Some(deep));
    }

    /// The origins a test gateway calls its own: two sites and the portal, over https on the
    /// default port or on 8443.
    fn ours(o: &Origin) -> bool {
        o.https
            && matches!(
                o.host.as_str(),
                "registry.school.example" | "hr.school.example" | "login.school.example"
            )
            && matches!(o.port, None | Some(8443))
    }

    #[test]
    fn absolute_urls_to_our_hosts_are_accepted_and_rebuilt() {
        let cases = [
            (
                "https://registry.school.example/x?y=1",
                "https://registry.school.example/x?y=1",
            ),
            (
                "https://registry.school.example",
                "https://registry.school.example/",
            ),
            (
                "https://REGISTRY.School.Example/a",
                "https://registry.school.example/a",
            ),
            (
                "https://hr.school.example:8443/",
                "https://hr.school.example:8443/",
            ),
            (
                "https://hr.school.example:443/p",
                "https://hr.school.example/p",
            ),
            (
                "https://hr.school.example?q=1",
                "https://hr.school.example/?q=1",
            ),
            (
                "https://hr.school.example/學籍",
                "https://hr.school.example/學籍",
            ),
        ];
        for (rd, url) in cases {
            let target = safe_return_url(rd, ours).unwrap_or_else(|| panic!("refused {rd:?}"));
            assert_eq!(target.to_url(), url, "{rd:?}");
            assert!(matches!(target, ReturnTarget::Absolute { .. }));
        }
    }

    #[test]
    fn local_paths_keep_their_rules() {
        for rd in ACCEPTED {
            assert_eq!(
                safe_return_url(rd, ours),
                Some(ReturnTarget::Local(rd.to_string())),
                "{rd:?}"
            );
        }
        for rd in REJECTED {
            assert_eq!(safe_return_url(rd, ours), None, "should reject {rd:?}");
        }
    }

    #[test]
    fn absolute_url_tricks_are_refused() {
        let refused = [
            // Not ours, or ours in a spelling that hides another host.
            "https://evil.example/",
            "https://registry.school.example.evil.example/",
            "https://registry.school.example@evil.example/",
            "https://user:pw@registry.school.example/",
            "https://evil.example\\@registry.school.example/",
            "https://evil.example\\registry.school.example/",
            "https://registry.school.example\\/evil.example",
            "https://evil.example#@registry.school.example/",
            "https://evil.example?@registry.school.example/",
            "https://registry%2eschool.example/",
            "https://%72egistry.school.example/",
            "https://registry.school.example%2f@evil.example/",
            "https://registry.school.example./",
            "https://registry.school.example:8080/",
            "https://registry.school.example:0/",
            "https://registry.school.example:99999/",
            "https://registry.school.example:/",
            "https://registry.school.example:+443/",
            "https://[::1]/",
            "https://[::1/",
            // Scheme tricks.
            "http://registry.school.example/",
            "HTTPS://registry.school.example/",
            "https:/registry.school.example/",
            "https:registry.school.example/",
            "https:///registry.school.example/",
            "https:\\\\registry.school.example/",
            "javascript://registry.school.example/%0aalert(1)",
            "ftp://registry.school.example/",
            " https://registry.school.example/",
            "https://registry.school.example /",
            "https://\tregistry.school.example/",
            "https://registry.school.example\t/",
            // Our host, but a path the local rules refuse.
            "https://registry.school.example//evil.example",
            "https://registry.school.example/\\evil.example",
            "https://registry.school.example/.menshen/login",
            "https://registry.school.example/%2f%2fevil.example",
            "https://registry.school.example/a\nb",
            "https://registry.school.example/x y",
        ];
        for rd in refused {
            assert_eq!(safe_return_url(rd, ours), None, "should refuse {rd:?}");
        }
        let long = format!("https://registry.school.example/{}", "a".repeat(2048));
        assert_eq!(safe_return_url(&long, ours), None);
    }

    #[test]
    fn ipv6_literals_are_hosts_too() {
        let accept_v6 = |o: &Origin| o.host == "[::1]" && o.port == Some(8080);
        assert_eq!(
            safe_return_url("http://[::1]:8080/x", accept_v6).map(|t| t.to_url()),
            Some("http://[::1]:8080/x".to_string())
        );
        assert_eq!(safe_return_url("http://[::1]x:8080/", accept_v6), None);
        assert_eq!(safe_return_url("http://[zz]:8080/", accept_v6), None);
    }
}
