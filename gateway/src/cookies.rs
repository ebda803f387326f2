//! Menshen's cookies: reading them from requests, writing `Set-Cookie`, and keeping them from
//! the legacy app.
//!
//! Over TLS the session cookie is `__Host-menshen` (Secure, HttpOnly, SameSite=Lax, Path=/, no
//! Domain), which browsers refuse to let another host or plain HTTP set. The plain-HTTP
//! development mode (`insecure_dev_cookie`) drops the prefix and `Secure`.

use crate::random;

/// Names and flags for one request's cookies, chosen by whether it arrived over TLS.
#[derive(Debug, Clone, Copy)]
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    pub oidc: &'static str,
    pub secure: bool,
}

pub const TLS_NAMES: CookieNames = CookieNames {
    session: "__Host-menshen",
    csrf: "__Host-menshen-csrf",
    oidc: "__Host-menshen-oidc",
    secure: true,
};

pub const DEV_NAMES: CookieNames = CookieNames {
    session: "menshen",
    csrf: "menshen-csrf",
    oidc: "menshen-oidc",
    secure: false,
};

/// The language choice is not a secret and is shared by both modes.
pub const LANG_COOKIE: &str = "menshen-lang";

/// The state of one of our cookies in a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenCookie {
    #[default]
    Absent,
    Valid(String),
    /// Present but not a token we could have issued: never looked up in a store.
    Malformed,
    /// Sent more than once. Which copy is ours cannot be told (one may be planted), so none is
    /// used; the request goes on as if the cookie were absent and the reply clears it, so a
    /// planted copy cannot keep its owner out.
    Duplicated,
}

impl TokenCookie {
    pub fn value(&self) -> Option<&str> {
        match self {
            TokenCookie::Valid(v) => Some(v),
            _ => None,
        }
    }
}

/// Our cookies as found in a request's `Cookie` header(s).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCookies {
    pub session: TokenCookie,
    pub csrf: TokenCookie,
    /// Binds a login at an OpenID provider to this browser.
    pub oidc: TokenCookie,
    pub lang: Option<String>,
}

impl RequestCookies {
    /// The names of our cookies that arrived more than once: the reply clears them.
    pub fn duplicated(&self, names: CookieNames) -> Vec<&'static str> {
        [
            (&self.session, names.session),
            (&self.csrf, names.csrf),
            (&self.oidc, names.oidc),
        ]
        .into_iter()
        .filter(|(cookie, _)| **cookie == TokenCookie::Duplicated)
        .map(|(_, name)| name)
        .collect()
    }
}

/// Splits one `Cookie` header value into (name, value) pairs the way browsers write them.
///
/// Only space and tab around names and values are trimmed (RFC 6265 §5.2): a name with any
/// other leading character, Unicode white space included, is another cookie, which a browser
/// would not hold to the `__Host-` rules, so it must not be read as ours. Pairs whose name is
/// not visible ASCII are skipped altogether.
fn pairs(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw.split(|b| *b == b';').filter_map(|pair| {
        let at = pair.iter().position(|b| *b == b'=')?;
        let (name, value) = (trim(&pair[..at]), trim(&pair[at + 1..]));
        let visible = !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic());
        visible.then_some((name, value))
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Reads our cookies from every `Cookie` header value. A repeated token cookie is
/// [`TokenCookie::Duplicated`] rather than either copy.
pub fn parse<'a>(headers: impl Iterator<Item = &'a [u8]>, names: CookieNames) -> RequestCookies {
    let mut out = RequestCookies::default();
    for raw in headers {
        for (name, value) in pairs(raw) {
            if name == names.session.as_bytes() {
                out.session = classify(&out.session, value);
            } else if name == names.csrf.as_bytes() {
                out.csrf = classify(&out.csrf, value);
            } else if name == names.oidc.as_bytes() {
                out.oidc = classify(&out.oidc, value);
            } else if name == LANG_COOKIE.as_bytes() && value.len() <= 8 {
                out.lang = std::str::from_utf8(value).ok().map(str::to_owned);
            }
        }
    }
    out
}

fn classify(previous: &TokenCookie, value: &[u8]) -> TokenCookie {
    match previous {
        TokenCookie::Absent => match std::str::from_utf8(value) {
            Ok(v) if random::is_token(v) => TokenCookie::Valid(v.to_owned()),
            _ => TokenCookie::Malformed,
        },
        _ => TokenCookie::Duplicated,
    }
}

/// The `Cookie` header for the upstream: the legacy app never sees Menshen's own cookies.
/// Names are read exactly as [`parse`] reads them. Returns `None` when nothing is left.
pub fn without_ours(value: &[u8], names: CookieNames) -> Option<String> {
    let ours = [names.session, names.csrf, names.oidc, LANG_COOKIE];
    let kept: Vec<String> = value
        .split(|b| *b == b';')
        .map(trim)
        .filter(|pair| {
            let name = trim(pair.split(|b| *b == b'=').next().unwrap_or_default());
            !pair.is_empty() && !ours.iter().any(|n| n.as_bytes() == name)
        })
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// True when a `Cookie` header mentions one of our cookies (only then is it rewritten).
pub fn mentions_ours(value: &[u8]) -> bool {
    value.windows(7).any(|w| w == b"menshen")
}

/// `Set-Cookie` value for a token cookie; `max_age` `None` makes a browser-session cookie.
pub fn set(name: &str, value: &str, names: CookieNames, max_age: Option<u64>) -> String {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if names.secure {
        s.push_str("; Secure");
    }
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    s
}

/// `Set-Cookie` value that removes a cookie.
pub fn clear(name: &str, names: CookieNames) -> String {
    set(name, "", names, Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_cookies_among_others() {
        let t = random::token();
        let header = format!("a=1; menshen={t}; menshen-lang=en");
        let c = parse(std::iter::once(header.as_bytes()), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Valid(t));
        assert_eq!(c.csrf, TokenCookie::Absent);
        assert_eq!(c.lang.as_deref(), Some("en"));
    }

    #[test]
    fn malformed_and_duplicated_session_cookies_are_not_valid() {
        let c = parse(std::iter::once(&b"menshen=abc"[..]), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Malformed);
        let t = random::token();
        let twice = format!("menshen={t}; menshen={t}");
        let c = parse(std::iter::once(twice.as_bytes()), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Duplicated);
        let c = parse(std::iter::once(&b"\xff\xfe=; menshen"[..]), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Absent);
    }

    #[test]
    fn duplicated_token_cookies_are_named_for_clearing() {
        let (a, b) = (random::token(), random::token());
        let header =
            format!("__Host-menshen={a}; x=1; __Host-menshen={b}; __Host-menshen-csrf={a}");
        let c = parse(std::iter::once(header.as_bytes()), TLS_NAMES);
        assert_eq!(c.session, TokenCookie::Duplicated);
        assert_eq!(c.session.value(), None);
        assert_eq!(c.csrf, TokenCookie::Valid(a.clone()));
        assert_eq!(c.duplicated(TLS_NAMES), vec!["__Host-menshen"]);
        // Across two Cookie headers, and when the first copy is garbage, too.
        let second = format!("__Host-menshen={b}");
        let c = parse(
            [&b"__Host-menshen=x"[..], second.as_bytes()].into_iter(),
            TLS_NAMES,
        );
        assert_eq!(c.duplicated(TLS_NAMES), vec!["__Host-menshen"]);
    }

    #[test]
    fn only_space_and_tab_are_trimmed_and_names_are_ascii() {
        let t = random::token();
        // U+2000 (en quad), U+00A0, U+3000 and U+FEFF before a name make another cookie,
        // which a browser does not hold to the __Host- rules.
        for space in [
            "\u{2000}", "\u{a0}", "\u{3000}", "\u{feff}", "\u{85}", "\u{b}", "\u{c}",
        ] {
            let header = format!("{space}__Host-menshen-csrf={t}; {space}__Host-menshen={t}");
            let c = parse(std::iter::once(header.as_bytes()), TLS_NAMES);
            assert_eq!(c, RequestCookies::default(), "{space:?}");
            let header = format!("__Host-menshen{space}={t}");
            let c = parse(std::iter::once(header.as_bytes()), TLS_NAMES);
            assert_eq!(c.session, TokenCookie::Absent, "{space:?}");
        }
        let header = format!(" \t__Host-menshen\t = {t} \t; __Host-menshen-csrf={t}");
        let c = parse(std::iter::once(header.as_bytes()), TLS_NAMES);
        assert_eq!(c.session, TokenCookie::Valid(t.clone()));
        assert_eq!(c.csrf, TokenCookie::Valid(t.clone()));
        // A Unicode-spaced lookalike is not ours, so the upstream keeps it as it came.
        let header = format!("\u{2000}menshen={t}; a=1");
        assert_eq!(
            without_ours(header.as_bytes(), DEV_NAMES).as_deref(),
            Some(header.as_str())
        );
        let header = format!("\tmenshen={t}; a=1");
        assert_eq!(
            without_ours(header.as_bytes(), DEV_NAMES).as_deref(),
            Some("a=1")
        );
    }

    #[test]
    fn tls_names_ignore_plain_cookies() {
        let t = random::token();
        let header = format!("menshen={t}");
        let c = parse(std::iter::once(header.as_bytes()), TLS_NAMES);
        assert_eq!(c.session, TokenCookie::Absent);
    }

    #[test]
    fn upstream_cookie_header_loses_only_ours() {
        assert_eq!(
            without_ours(b"a=1; menshen=x; menshen-csrf=y; b=2", DEV_NAMES).as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(without_ours(b"menshen=x", DEV_NAMES), None);
    }

    #[test]
    fn set_cookie_flags() {
        let s = set("__Host-menshen", "v", TLS_NAMES, None);
        assert_eq!(
            s,
            "__Host-menshen=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(clear("menshen", DEV_NAMES).ends_with("Max-Age=0"));
    }
}
