//! Validation of the post-login return target (`rd`), so login cannot become an open redirect.

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
    use super::safe_return_target;

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
}
