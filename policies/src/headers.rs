//! Request headers a client may not set, and how their names are matched.
//!
//! Legacy stacks trust some headers as if only a proxy in front of them could have sent them:
//! routing (`X-Original-URL` turns an allowed `/public/x` into `/admin` on IIS and Symfony),
//! host and scheme (absolute links, "is this HTTPS"), the client's address (allow-lists,
//! audit logs) and a verified client certificate. Menshen is that proxy, so it removes them
//! all and sets the few it vouches for itself.
//!
//! Names are compared folded: ASCII case ignored and `_` read as `-`, because CGI, PHP, IIS
//! and WSGI expose `X_Original_URL` and `X-Original-URL` as the same `HTTP_X_ORIGINAL_URL`.

use std::cmp::Ordering;

/// Forwarding, routing and client-address headers removed from every request unless a site
/// keeps one (`keep_headers`). Gathered from what frameworks and "real IP" snippets read:
/// IIS URL Rewrite / ARR and ASP.NET Core's forwarded-headers middleware (the `X-Original-*`
/// names it moves values to, `X-ARR-*`), Symfony, Laravel, Rails/Rack, Django, Express,
/// Spring and Tomcat's RemoteIpValve, Traefik and nginx `auth_request` conventions, CDN
/// client-address headers (Cloudflare, Fastly, Akamai, Azure, App Engine) and the PHP
/// `HTTP_CLIENT_IP` / `HTTP_X_FORWARDED` snippets. Folded form, sorted.
pub const FORWARDING: &[&str] = &[
    "cf-connecting-ip",
    "cf-connecting-ipv6",
    "client-ip",
    "fastly-client-ip",
    "forwarded",
    "forwarded-for",
    "front-end-https",
    "ssl-client-cert",
    "true-client-ip",
    "x-appengine-user-ip",
    "x-arr-clientcert",
    "x-arr-ssl",
    "x-azure-clientip",
    "x-azure-socketip",
    "x-client-cert",
    "x-client-ip",
    "x-cluster-client-ip",
    "x-custom-ip-authorization",
    "x-envoy-external-address",
    "x-envoy-original-path",
    "x-forwarded",
    "x-forwarded-by",
    "x-forwarded-client-cert",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-method",
    "x-forwarded-path",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-proto",
    "x-forwarded-protocol",
    "x-forwarded-scheme",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-uri",
    "x-host",
    "x-http-host-override",
    "x-original-for",
    "x-original-host",
    "x-original-method",
    "x-original-prefix",
    "x-original-proto",
    "x-original-remote-addr",
    "x-original-uri",
    "x-original-url",
    "x-originating-ip",
    "x-proxyuser-ip",
    "x-real-ip",
    "x-remote-addr",
    "x-remote-ip",
    "x-rewrite-url",
    "x-ssl-client-cert",
    "x-ssl-client-dn",
    "x-ssl-client-verify",
    "x-url-scheme",
];

/// Forwarding headers Menshen sets itself on every proxied request (from the connection and
/// the `Host` it routed by), so a site cannot keep the client's.
pub const SET_BY_MENSHEN: &[&str] = &["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"];

/// One header-name byte, folded.
fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        _ => b.to_ascii_lowercase(),
    }
}

/// A header name in folded form.
pub fn folded(name: &str) -> String {
    name.bytes().map(|b| char::from(fold(b))).collect()
}

/// A set of header names (and name prefixes) matched folded. Built once per site; matching
/// allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct HeaderMatcher {
    /// Folded, sorted, without duplicates.
    names: Vec<Vec<u8>>,
    /// Folded.
    prefixes: Vec<Vec<u8>>,
}

impl HeaderMatcher {
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        prefixes: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut names: Vec<Vec<u8>> = names.into_iter().map(|n| folded(n).into_bytes()).collect();
        names.sort();
        names.dedup();
        HeaderMatcher {
            names,
            prefixes: prefixes
                .into_iter()
                .map(|p| folded(p).into_bytes())
                .collect(),
        }
    }

    /// True when `name`, folded, is one of the names or starts with one of the prefixes.
    pub fn matches(&self, name: &[u8]) -> bool {
        let by_prefix = self
            .prefixes
            .iter()
            .any(|p| name.len() >= p.len() && name.iter().zip(p).all(|(a, b)| fold(*a) == *b));
        by_prefix
            || self
                .names
                .binary_search_by(|n| compare_folded(n, name))
                .is_ok()
    }
}

/// Orders a folded name against a raw one as if the raw one were folded.
fn compare_folded(folded: &[u8], raw: &[u8]) -> Ordering {
    folded.iter().copied().cmp(raw.iter().map(|b| fold(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_folded_sorted_and_unique() {
        for pair in FORWARDING.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for name in FORWARDING.iter().chain(SET_BY_MENSHEN) {
            assert_eq!(&folded(name), name);
        }
        for name in SET_BY_MENSHEN {
            assert!(FORWARDING.contains(name), "{name}");
        }
    }

    #[test]
    fn the_readme_lists_every_name() {
        let readme = include_str!("../../README.md");
        for name in FORWARDING {
            assert!(
                readme.contains(&format!("`{name}`")),
                "README misses {name}"
            );
        }
    }

    #[test]
    fn every_spelling_matches() {
        let m = HeaderMatcher::new(FORWARDING.iter().copied(), ["x-menshen-"]);
        for name in [
            "X-Original-URL",
            "x_original_url",
            "X_ORIGINAL_URL",
            "x-original_url",
            "Client-IP",
            "CLIENT_IP",
            "X-Originating-IP",
            "x_remote_ip",
            "X-Remote-Addr",
            "X-ProxyUser-Ip",
            "Fastly-Client-IP",
            "CF-Connecting-IP",
            "X-Host",
            "X-HTTP-Host-Override",
            "X-Forwarded-Uri",
            "X_Forwarded_For",
            "x-forwarded-host",
            "X-Menshen-User",
            "x_menshen_anything",
        ] {
            assert!(m.matches(name.as_bytes()), "{name}");
        }
        for name in [
            "Host",
            "Accept",
            "X-Original",
            "X-Original-URLs",
            "X-Forwarded-Fo",
            "X-Menshen",
            "Xx-Real-IP",
            "Cookie",
            "",
        ] {
            assert!(!m.matches(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn names_can_be_added_and_left_out() {
        let m = HeaderMatcher::new(
            FORWARDING
                .iter()
                .copied()
                .filter(|n| *n != "x-forwarded-prefix")
                .chain(["X_Legacy_Client"]),
            [],
        );
        assert!(!m.matches(b"X-Forwarded-Prefix"));
        assert!(m.matches(b"x-legacy-client"));
        assert!(m.matches(b"X_LEGACY_CLIENT"));
        assert!(m.matches(b"x-real-ip"));
    }
}
