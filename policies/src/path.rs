//! Canonicalisation of request paths, so access rules see exactly the path the upstream serves.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use unicode_normalization::UnicodeNormalization;

/// Longest raw path accepted; legacy servers choke on (or truncate) longer ones, and no real page
/// of theirs needs it.
const MAX_RAW_LEN: usize = 8192;

/// Bytes left as-is when re-encoding for upstream: RFC 3986 `pchar` (unreserved, sub-delims,
/// ':' and '@') plus '/'. Everything else, '%', '?', '#' and non-ASCII bytes included, is
/// percent-encoded so the upstream decodes back to exactly the checked path.
const UPSTREAM_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b'+')
    .remove(b',')
    .remove(b';')
    .remove(b'=')
    .remove(b':')
    .remove(b'@')
    .remove(b'/');

/// True when `raw` is already canonical and upstream-safe: only bytes `to_uri_path` keeps
/// (minus ';', which Tomcat reads as parameters), no empty, "." or ".." segment.
fn is_canonical(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let plain = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(b));
    plain
        && raw[1..].split('/').enumerate().all(|(i, seg)| {
            seg != "." && seg != ".." && (!seg.is_empty() || i == raw[1..].split('/').count() - 1)
        })
}

/// Why a request path was refused before any rule was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with '/'.
    NotAbsolute,
    /// The path (after percent-decoding) contains an ASCII control character.
    ControlCharacter,
    /// A '%' is not followed by two hex digits, or the decoded bytes are not UTF-8.
    BadEncoding,
    /// The path is longer than the gateway accepts.
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::NotAbsolute => "path does not start with '/'",
            PathError::ControlCharacter => "path contains a control character",
            PathError::BadEncoding => "path has invalid percent-encoding or is not UTF-8",
            PathError::TooLong => "path is too long",
        })
    }
}

impl std::error::Error for PathError {}

/// The canonical form of a request path, used both to evaluate access rules and as the path
/// sent upstream (so what was checked is what is served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    decoded: String,
}

impl NormalizedPath {
    /// The decoded canonical path; always starts with '/'.
    pub fn as_str(&self) -> &str {
        &self.decoded
    }

    /// The canonical path re-percent-encoded for the upstream request line. Decoding it once
    /// gives back [`NormalizedPath::as_str`] exactly, so the upstream cannot be handed a
    /// different path from the one the rules were checked against.
    pub fn to_uri_path(&self) -> String {
        utf8_percent_encode(&self.decoded, UPSTREAM_KEEP).to_string()
    }
}

impl fmt::Display for NormalizedPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decoded)
    }
}

/// Value of an ASCII hex digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Strict single-pass percent-decoding: a stray '%' is an error rather than passed through,
/// because servers disagree on what a stray '%' means and disagreement is where bypasses live.
fn strict_decode(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(PathError::BadEncoding),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PathError::BadEncoding)
}

/// Why a path would name something else on a Windows/IIS server than the rules see, if it
/// would. Such requests are refused on sites served the Windows way (`path_case =
/// "insensitive"`) rather than guessed at:
/// - a segment ending in a dot or space (`/admin./x` is `/admin/x` there);
/// - a colon anywhere in a segment: NTFS reads `name:stream:$TYPE`, so `/admin::$DATA` and
///   `/admin:$i30:$INDEX_ALLOCATION/` open `/admin` (IIS itself refuses ':' by default);
/// - an 8.3 short name (`/ADMIN~1/x`);
/// - a non-ASCII character that case-folds or NFKC-normalises to ASCII: full-width `．／＼`,
///   `ſ` (upper case `S`), the Kelvin sign `K` (lower case `k`), `ﬀ`. Windows compares names
///   with its own upper-case table, and "best fit" code-page conversions map such characters
///   to their ASCII look-alikes, so `/ａｄｍｉｎ/` or `/ſecret/` would reach `/admin/` or
///   `/secret/` while the rules saw another name.
pub fn windows_alias(path: &NormalizedPath) -> Option<&'static str> {
    path.as_str().split('/').find_map(|segment| {
        if segment.ends_with('.') || segment.ends_with(' ') {
            Some("a path segment ends with a dot or space")
        } else if segment.contains(':') {
            Some("a path segment names an NTFS stream (':')")
        } else if segment
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'~' && w[1].is_ascii_digit())
        {
            Some("a path segment looks like an 8.3 short name")
        } else if segment.chars().any(folds_to_ascii) {
            Some("a path segment has a character Windows reads as a plain ASCII one")
        } else {
            None
        }
    })
}

/// True for a non-ASCII character whose lower case, upper case or NFKC form contains ASCII.
fn folds_to_ascii(c: char) -> bool {
    !c.is_ascii()
        && (c.to_lowercase().any(|f| f.is_ascii())
            || c.to_uppercase().any(|f| f.is_ascii())
            || std::iter::once(c).nfkc().any(|f| f.is_ascii()))
}

/// True when the decoded path still holds a percent-encoded dot, slash or backslash, perhaps
/// encoded several times over (`%2e`, `%252e`, `%25252F`, `%5C`, any case): the raw request
/// encoded a '%' that encodes a separator. The rules saw a literal `%2e`; an upstream that
/// decodes once more (PHP decoding `PATH_INFO`, some rewrite rules) serves `..` or `/`, so
/// `/public/%252e%252e/admin/` would reach `/admin/`. Refused unless the site allows it.
pub fn double_encoded_separator(path: &NormalizedPath) -> bool {
    let bytes = path.as_str().as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        if *b != b'%' {
            return false;
        }
        let mut rest = &bytes[i + 1..];
        while let [b'2', b'5', tail @ ..] = rest {
            rest = tail;
        }
        matches!(
            rest,
            [b'2', b'e' | b'E' | b'f' | b'F', ..] | [b'5', b'c' | b'C', ..]
        )
    })
}

/// Canonicalise the path part of a request target (no query string).
///
/// Steps, each closing a known way legacy servers see a different path from the one checked:
/// must start with '/' (else [`PathError::NotAbsolute`]); longer than 8192 bytes is
/// [`PathError::TooLong`]; percent-decode exactly once (a '%' without two hex digits, or
/// decoded bytes that are not UTF-8, is [`PathError::BadEncoding`]); an ASCII control character
/// after decoding is [`PathError::ControlCharacter`]; '\' is treated as '/' (IIS does);
/// ";params" are stripped from every segment (Tomcat serves /admin;x=1 as /admin); repeated '/'
/// collapse; "." segments are dropped; ".." pops a segment, never above the root; a trailing '/'
/// is kept when the input ended with '/' or with a "." or ".." segment.
pub fn normalize(raw: &str) -> Result<NormalizedPath, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if raw.len() > MAX_RAW_LEN {
        return Err(PathError::TooLong);
    }
    if is_canonical(raw) {
        // The common case: nothing to decode, collapse or resolve, and the text is already
        // what `to_uri_path` would send.
        return Ok(NormalizedPath {
            decoded: raw.to_owned(),
        });
    }
    let decoded = strict_decode(raw)?;
    if decoded.bytes().any(|b| b.is_ascii_control()) {
        return Err(PathError::ControlCharacter);
    }
    let unified = decoded.replace('\\', "/");

    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in unified.split('/').skip(1) {
        // Path parameters end at the next '/', so everything from ';' on belongs to them.
        let segment = segment.split(';').next().unwrap_or("");
        trailing_slash = false;
        match segment {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }

    let mut out = String::with_capacity(unified.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(NormalizedPath { decoded: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &str) -> String {
        match normalize(raw) {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => panic!("{raw:?} was refused: {e}"),
        }
    }

    fn uri(raw: &str) -> String {
        match normalize(raw) {
            Ok(p) => p.to_uri_path(),
            Err(e) => panic!("{raw:?} was refused: {e}"),
        }
    }

    #[test]
    fn brief_examples() {
        assert_eq!(norm("/a//b/./c/../d"), "/a/b/d");
        assert_eq!(norm("/public/..%2fadmin"), "/admin");
        assert_eq!(norm("/public/%2e%2e/admin"), "/admin");
        assert_eq!(norm("/public\\..\\admin"), "/admin");
        assert_eq!(norm("/admin;jsessionid=1/x"), "/admin/x");
        assert_eq!(norm("/%2561"), "/%61");
        assert_eq!(uri("/%2561"), "/%2561");
        assert_eq!(norm("/../../etc"), "/etc");
        assert_eq!(normalize("/a%00b"), Err(PathError::ControlCharacter));
        assert_eq!(normalize("/a%zz"), Err(PathError::BadEncoding));
        assert_eq!(norm("/%C3%A9"), "/é");
        assert_eq!(uri("/%C3%A9"), "/%C3%A9");
        assert_eq!(norm("/"), "/");
    }

    #[test]
    fn not_absolute() {
        for raw in ["", "a", "a/b", "%2fa", "\\a", "*", "http://x/y", " /a"] {
            assert_eq!(normalize(raw), Err(PathError::NotAbsolute), "{raw:?}");
        }
    }

    #[test]
    fn too_long() {
        let ok = format!("/{}", "a".repeat(MAX_RAW_LEN - 1));
        assert_eq!(ok.len(), MAX_RAW_LEN);
        assert_eq!(norm(&ok), ok);
        let long = format!("/{}", "a".repeat(MAX_RAW_LEN));
        assert_eq!(normalize(&long), Err(PathError::TooLong));
    }

    #[test]
    fn bad_encoding() {
        for raw in [
            "/%",
            "/a%",
            "/a%2",
            "/a%g0",
            "/a%0g",
            "/%%41",
            "/%ff",
            "/%C3",
            "/%C3%28",
            "/%80",
            "/%ED%A0%80", // UTF-16 surrogate encoded as UTF-8
        ] {
            assert_eq!(normalize(raw), Err(PathError::BadEncoding), "{raw:?}");
        }
    }

    #[test]
    fn control_characters() {
        for raw in [
            "/a%00",
            "/a%0a",
            "/a%0D%0Ab",
            "/%09",
            "/a%1f",
            "/a%7f",
            "/a\nb",
            "/a\tb",
            "/\u{7f}",
        ] {
            assert_eq!(normalize(raw), Err(PathError::ControlCharacter), "{raw:?}");
        }
    }

    #[test]
    fn decodes_exactly_once() {
        assert_eq!(norm("/%252e%252e/admin"), "/%2e%2e/admin");
        assert_eq!(uri("/%252e%252e/admin"), "/%252e%252e/admin");
        assert_eq!(norm("/public/%252f..%252fadmin"), "/public/%2f..%2fadmin");
        assert_eq!(norm("/%41%62c"), "/Abc");
        assert_eq!(norm("/a%20b"), "/a b");
        assert_eq!(uri("/a%20b"), "/a%20b");
    }

    #[test]
    fn dot_segments() {
        assert_eq!(norm("/."), "/");
        assert_eq!(norm("/.."), "/");
        assert_eq!(norm("/a/."), "/a/");
        assert_eq!(norm("/a/.."), "/");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/b/../"), "/a/");
        assert_eq!(norm("/a/./b"), "/a/b");
        assert_eq!(norm("/a/b/../../../../c"), "/c");
        assert_eq!(norm("/%2E/a"), "/a");
        assert_eq!(norm("/a/%2E%2e"), "/");
        // Three dots and dotted names are ordinary segments.
        assert_eq!(norm("/.../a"), "/.../a");
        assert_eq!(norm("/a/..b/c"), "/a/..b/c");
        assert_eq!(norm("/.well-known/x"), "/.well-known/x");
    }

    #[test]
    fn slashes() {
        assert_eq!(norm("//"), "/");
        assert_eq!(norm("///a///b"), "/a/b");
        assert_eq!(norm("/a/"), "/a/");
        assert_eq!(norm("/a//"), "/a/");
        assert_eq!(norm("/a"), "/a");
        assert_eq!(norm("//evil.com/x"), "/evil.com/x");
        assert_eq!(norm("/a%2fb"), "/a/b");
        assert_eq!(norm("/a%5cb"), "/a/b");
        assert_eq!(norm("/a%5C..%5Cadmin"), "/admin");
    }

    #[test]
    fn backslash_first_char_is_not_absolute() {
        // Only a literal '/' makes a path absolute; '\' is folded after that check.
        assert_eq!(normalize("\\admin"), Err(PathError::NotAbsolute));
        assert_eq!(norm("/\\admin"), "/admin");
    }

    #[test]
    fn path_parameters() {
        assert_eq!(norm("/admin;x=1"), "/admin");
        assert_eq!(norm("/admin;"), "/admin");
        assert_eq!(norm("/admin;/"), "/admin/");
        assert_eq!(norm("/public/..;/admin"), "/admin");
        assert_eq!(norm("/public/.;x/admin"), "/public/admin");
        assert_eq!(norm("/;x/admin"), "/admin");
        assert_eq!(norm("/a;b;c/d;e"), "/a/d");
        assert_eq!(norm("/public/..%3b/admin"), "/admin");
        assert_eq!(norm("/admin%3bjsessionid=1"), "/admin");
        assert_eq!(norm("/;"), "/");
    }

    #[test]
    fn trailing_slash_rules() {
        assert_eq!(norm("/a/b/."), "/a/b/");
        assert_eq!(norm("/a/b/.."), "/a/");
        assert_eq!(norm("/a/b/c"), "/a/b/c");
        assert_eq!(norm("/a/b/c/"), "/a/b/c/");
        assert_eq!(norm("/a/b/;x"), "/a/b/");
    }

    #[test]
    fn non_ascii() {
        assert_eq!(norm("/%E5%AD%B8%E7%B1%8D"), "/學籍");
        assert_eq!(uri("/%E5%AD%B8%E7%B1%8D"), "/%E5%AD%B8%E7%B1%8D");
        // Raw UTF-8 (some clients send it) is accepted and encoded for upstream.
        assert_eq!(norm("/學籍"), "/學籍");
        assert_eq!(uri("/學籍"), "/%E5%AD%B8%E7%B1%8D");
        // Lowercase hex input comes out uppercase.
        assert_eq!(uri("/%c3%a9"), "/%C3%A9");
    }

    #[test]
    fn to_uri_path_encoding() {
        assert_eq!(uri("/a%3Fb"), "/a%3Fb");
        assert_eq!(uri("/a%23b"), "/a%23b");
        assert_eq!(uri("/a%25b"), "/a%25b");
        assert_eq!(uri("/a%22b%3C%3E"), "/a%22b%3C%3E");
        assert_eq!(uri("/a%60b%5E%7B%7D%7C%5B%5D"), "/a%60b%5E%7B%7D%7C%5B%5D");
        // pchar characters are left alone, whether or not they arrived encoded.
        assert_eq!(uri("/a-b._~!$&'()*+,=:@"), "/a-b._~!$&'()*+,=:@");
        assert_eq!(uri("/%41%7E"), "/A~");
        assert_eq!(uri("/"), "/");
    }

    #[test]
    fn uri_path_round_trips() {
        for raw in [
            "/",
            "/a/b/",
            "/%2561",
            "/%C3%A9/x",
            "/a%20b",
            "/a%3Fb%23c",
            "/x/%E5%AD%B8",
            "/a:b@c",
            "/%25%25",
        ] {
            let p = match normalize(raw) {
                Ok(p) => p,
                Err(e) => panic!("{raw:?}: {e}"),
            };
            let again = normalize(&p.to_uri_path());
            assert_eq!(again.as_ref(), Ok(&p), "{raw:?}");
        }
    }

    #[test]
    fn idempotent_on_canonical_uri() {
        for raw in [
            "/a//b/./c/../d",
            "/public\\..\\admin",
            "/admin;x/y/",
            "/../x/..",
        ] {
            let once = normalize(raw).map(|p| p.to_uri_path());
            let twice = once
                .clone()
                .and_then(|u| normalize(&u))
                .map(|p| p.to_uri_path());
            assert_eq!(once, twice, "{raw:?}");
        }
    }

    #[test]
    fn display_messages() {
        assert_eq!(
            PathError::NotAbsolute.to_string(),
            "path does not start with '/'"
        );
        assert!(!PathError::ControlCharacter.to_string().is_empty());
        assert!(!PathError::BadEncoding.to_string().is_empty());
        assert!(!PathError::TooLong.to_string().is_empty());
    }

    fn alias(raw: &str) -> Option<&'static str> {
        let p = normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        windows_alias(&p)
    }

    #[test]
    fn windows_equivalent_names_are_flagged() {
        for raw in [
            "/admin./x",
            "/admin%20/x",
            "/admin::$DATA",
            "/ADMIN~1/x",
            "/a/b..",
            // Single-colon streams: the directory index of /admin, a named stream.
            "/admin:$i30:$INDEX_ALLOCATION/",
            "/admin:$I30:$INDEX_ALLOCATION/users",
            "/admin%3a$i30%3a$INDEX_ALLOCATION/",
            "/secret.aspx:stream",
            // Full-width dot, slash, backslash and letters; long s; Kelvin sign; ligature;
            // one-dot leader; dotless i (upper case I).
            "/public/%EF%BC%8E%EF%BC%8E/admin/",
            "/public/．．／admin/",
            "/public/＼admin",
            "/ａｄｍｉｎ/",
            "/\u{17f}ecret/",
            "/\u{212a}ey/",
            "/\u{fb00}/",
            "/a\u{2024}/",
            "/adm\u{131}n/",
        ] {
            assert!(alias(raw).is_some(), "{raw}");
        }
        for raw in [
            "/admin/x",
            "/file.aspx",
            "/a~b/c",
            "/report 2024/x.pdf",
            "/",
            "/學籍/成績.aspx",
            "/%E5%AD%B8%E7%B1%8D/",
            "/caf%C3%A9/",
            "/Ελληνικά/",
        ] {
            assert_eq!(alias(raw), None, "{raw}");
        }
    }

    #[test]
    fn double_encoded_separators_are_flagged() {
        let flagged = |raw: &str| {
            let p = normalize(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            double_encoded_separator(&p)
        };
        for raw in [
            "/public/%252e%252e/admin/",
            "/public/%252E%252E/admin/",
            "/public/..%252fadmin",
            "/public/..%252Fadmin",
            "/public/..%255cadmin",
            "/public/..%255Cadmin",
            "/public/%25252e%25252e/admin/",
            "/public/%2525252f",
            "/public/%25%32%65",
        ] {
            assert!(flagged(raw), "{raw}");
        }
        for raw in [
            "/public/%2e%2e/x",
            "/a%2fb",
            "/%2561",
            "/100%25",
            "/100%25/x",
            "/%252",
            "/%2525",
            "/%25e2",
            "/a.b/c",
        ] {
            assert!(!flagged(raw), "{raw}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_one() {
        for raw in [
            "/",
            "/a/b",
            "/a/b/",
            "/a.b/c-d_e~f",
            "/x:y@z/(1)",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a/..",
            "/%41",
            "/a;b",
            "/a\\b",
        ] {
            let fast = is_canonical(raw);
            let full = normalize(raw);
            if fast {
                let p = full.unwrap_or_else(|e| panic!("{raw}: {e}"));
                assert_eq!(p.as_str(), raw, "{raw}");
                assert_eq!(p.to_uri_path(), raw, "{raw}");
            }
        }
        assert!(is_canonical("/a/b/"));
        assert!(!is_canonical("/a//b"));
        assert!(!is_canonical("/a/./b"));
        assert!(!is_canonical("/a/.."));
        assert!(!is_canonical("/%61"));
        assert!(!is_canonical("/a;b"));
    }
}
