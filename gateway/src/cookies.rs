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

/// Reads our cookies from every `Cookie` header value. Repeated session cookies (a planted
/// duplicate) make the session cookie malformed rather than picking one.
pub fn parse<'a>(headers: impl Iterator<Item = &'a [u8]>, names: CookieNames) -> RequestCookies {
    let mut out = RequestCookies::default();
    for raw in headers {
        let text = String::from_utf8_lossy(raw);
        for pair in text.split(';') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name == names.session {
                out.session = classify(&out.session, value);
            } else if name == names.csrf {
                out.csrf = classify(&out.csrf, value);
            } else if name == names.oidc {
                out.oidc = classify(&out.oidc, value);
            } else if name == LANG_COOKIE && value.len() <= 8 {
                out.lang = Some(value.to_string());
            }
        }
    }
    out
}

fn classify(previous: &TokenCookie, value: &str) -> TokenCookie {
    match previous {
        TokenCookie::Absent if random::is_token(value) => TokenCookie::Valid(value.to_string()),
        _ => TokenCookie::Malformed,
    }
}

/// The `Cookie` header for the upstream: the legacy app never sees Menshen's own cookies.
/// Returns `None` when nothing is left.
pub fn without_ours(value: &[u8], names: CookieNames) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let kept: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("").trim();
            !pair.is_empty()
                && name != names.session
                && name != names.csrf
                && name != names.oidc
                && name != LANG_COOKIE
        })
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
    fn malformed_and_duplicated_session_cookies_are_malformed() {
        let c = parse(std::iter::once(&b"menshen=abc"[..]), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Malformed);
        let t = random::token();
        let twice = format!("menshen={t}; menshen={t}");
        let c = parse(std::iter::once(twice.as_bytes()), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Malformed);
        let c = parse(std::iter::once(&b"\xff\xfe=; menshen"[..]), DEV_NAMES);
        assert_eq!(c.session, TokenCookie::Absent);
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
