//! `[certificate]`: citizen digital certificate (自然人憑證) binding and login. Absent means
//! the method is off.

use std::time::Duration;

use crate::model::{CertificateConfig, CrlSource, OcspMode};
use crate::reader::{Cx, Table};

const DEFAULT_CRL_REFRESH: Duration = Duration::from_secs(6 * 3600);
/// How long past its nextUpdate a CRL still counts as current by default: a CA that
/// publishes a few hours late, or a night of failed downloads, does not lock everyone out.
const DEFAULT_CRL_GRACE: Duration = Duration::from_secs(12 * 3600);
/// The longest `crl_grace` accepted: beyond a week a list says little about today's cards.
const MAX_CRL_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// Where the HiPKI Local Sign Server listens on every user's computer.
const DEFAULT_COMPONENT_URL: &str = "http://localhost:61161";
/// The oldest component version the pages accept (the manual's screenshots show 1.3.4).
const DEFAULT_COMPONENT_MIN_VERSION: &str = "1.3.4";
/// How long an OCSP request may take by default: a responder slower than this is down, as
/// far as a person waiting at the login page is concerned.
const DEFAULT_OCSP_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest `ocsp_timeout` accepted: the verify request holds a worker task (and the
/// person) for this long when the responder is silent.
const MAX_OCSP_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn certificate(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> Option<CertificateConfig> {
    let mut table = root.table(cx, "certificate")?;
    table.require(cx, "trust_anchors");
    let mut trust_anchors = Vec::new();
    if let Some(list) = table.strings(cx, "trust_anchors") {
        if list.value.is_empty() {
            cx.error(
                &list.span,
                "`certificate.trust_anchors` must name at least one root certificate file",
            );
        }
        let name = table.name("trust_anchors");
        for text in list.value {
            trust_anchors.extend(super::readable_file(cx, &name, text));
        }
    }
    let mut intermediates = Vec::new();
    if let Some(list) = table.strings(cx, "intermediates") {
        let name = table.name("intermediates");
        for text in list.value {
            intermediates.extend(super::readable_file(cx, &name, text));
        }
    }
    let mut crls = Vec::new();
    if let Some(list) = table.strings(cx, "crls") {
        let name = table.name("crls");
        for text in list.value {
            if text.value.starts_with("https://") || text.value.starts_with("http://") {
                if is_http_url(&text.value) {
                    crls.push(CrlSource::Url(text.value));
                } else {
                    cx.error(
                        &text.span,
                        format!("`{name}`: {} is not a valid URL", text.shown()),
                    );
                }
            } else if text.value.contains("://") {
                cx.error(
                    &text.span,
                    format!(
                        "`{name}`: {} must be a file path or an http:// or https:// URL",
                        text.shown()
                    ),
                );
            } else {
                crls.extend(super::readable_file(cx, &name, text).map(CrlSource::File));
            }
        }
    }
    let crl_refresh = table
        .duration(cx, "crl_refresh")
        .map(|d| d.value)
        .unwrap_or(DEFAULT_CRL_REFRESH);
    let crl_grace = match table.duration_or_zero(cx, "crl_grace") {
        Some(d) if d.value > MAX_CRL_GRACE => {
            cx.error(
                &d.span,
                format!(
                    "`certificate.crl_grace` must be at most {} days: a list that old says \
                     little about the cards revoked since",
                    MAX_CRL_GRACE.as_secs() / 86_400
                ),
            );
            DEFAULT_CRL_GRACE
        }
        Some(d) => d.value,
        None => DEFAULT_CRL_GRACE,
    };
    let mut required_policies = Vec::new();
    if let Some(list) = table.strings(cx, "required_policies") {
        for text in list.value {
            if is_oid(&text.value) {
                required_policies.push(text.value);
            } else {
                cx.error(
                    &text.span,
                    format!(
                        "`certificate.required_policies`: {} is not an OID such as \
                         \"2.16.886.101.0.3.1\"",
                        text.shown()
                    ),
                );
            }
        }
    }
    let require_identity_match = table.bool(cx, "require_identity_match").unwrap_or(true);
    let component_download_url = table.string(cx, "component_download_url").and_then(|text| {
        let ok = is_http_url(&text.value);
        if !ok {
            cx.error(
                &text.span,
                format!(
                    "`certificate.component_download_url`: {} is not an http(s) URL",
                    text.shown()
                ),
            );
        }
        ok.then_some(text.value)
    });
    let component_url = table
        .string(cx, "component_url")
        .and_then(|text| match component_origin(&text.value) {
            Some(origin) => Some(origin),
            None => {
                cx.error(
                    &text.span,
                    format!(
                        "`certificate.component_url`: {} must be an origin such as \
                         \"http://localhost:61161\" (scheme, host and a port other than the \
                         scheme's default; no path)",
                        text.shown()
                    ),
                );
                None
            }
        })
        .unwrap_or_else(|| DEFAULT_COMPONENT_URL.to_owned());
    let component_min_version = table
        .string(cx, "component_min_version")
        .and_then(|text| {
            let ok = !text.value.is_empty()
                && text
                    .value
                    .split('.')
                    .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                cx.error(
                    &text.span,
                    format!(
                        "`certificate.component_min_version`: {} is not a version such as \"1.3.4\"",
                        text.shown()
                    ),
                );
            }
            ok.then_some(text.value)
        })
        .unwrap_or_else(|| DEFAULT_COMPONENT_MIN_VERSION.to_owned());
    let ocsp = match table.string(cx, "ocsp") {
        Some(text) => {
            let name = table.name("ocsp");
            match super::choice(cx, &name, &text, &["off", "prefer", "require"]) {
                Some("prefer") => OcspMode::Prefer,
                Some("require") => OcspMode::Require,
                _ => OcspMode::Off,
            }
        }
        None => OcspMode::Off,
    };
    let ocsp_url = table.string(cx, "ocsp_url").and_then(|text| {
        let ok = is_http_url(&text.value);
        if !ok {
            cx.error(
                &text.span,
                format!(
                    "`certificate.ocsp_url`: {} is not an http:// or https:// URL",
                    text.shown()
                ),
            );
        }
        ok.then_some(text.value)
    });
    let ocsp_timeout = match table.duration(cx, "ocsp_timeout") {
        Some(d) if d.value > MAX_OCSP_TIMEOUT => {
            cx.error(
                &d.span,
                format!(
                    "`certificate.ocsp_timeout` must be at most {} seconds: the person \
                     signing in waits that long when the responder is silent",
                    MAX_OCSP_TIMEOUT.as_secs()
                ),
            );
            DEFAULT_OCSP_TIMEOUT
        }
        Some(d) => d.value,
        None => DEFAULT_OCSP_TIMEOUT,
    };
    table.finish(cx);
    Some(CertificateConfig {
        trust_anchors,
        intermediates,
        crls,
        crl_refresh,
        crl_grace,
        required_policies,
        require_identity_match,
        component_download_url,
        component_url,
        component_min_version,
        ocsp,
        ocsp_url,
        ocsp_timeout,
    })
}

/// `http://host:port` or `https://host:port` with nothing after it (a trailing `/` is
/// dropped): the pages compare it with `MessageEvent.origin`, so it must be an origin.
fn component_origin(text: &str) -> Option<String> {
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))?;
    let (host, port) = rest.rsplit_once(':')?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.parse::<u16>().is_ok_and(|p| p > 0);
    // Browsers leave a scheme's default port out of `MessageEvent.origin`, so an origin
    // written with it would never match the popup's messages.
    let default_port = matches!(
        (trimmed.starts_with("https://"), port),
        (false, "80") | (true, "443")
    );
    (host_ok && port_ok && !default_port).then(|| trimmed.to_ascii_lowercase())
}

/// `http://` or `https://`, a host, no spaces or control characters.
pub(super) fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !r.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// Dotted decimal with at least two arcs, the first 0, 1 or 2.
fn is_oid(text: &str) -> bool {
    let arcs: Vec<&str> = text.split('.').collect();
    arcs.len() >= 2
        && matches!(arcs.first(), Some(&"0" | &"1" | &"2"))
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.len() <= 20 && a.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::{component_origin, is_http_url, is_oid};

    #[test]
    fn component_origins() {
        assert_eq!(
            component_origin("http://localhost:61161").as_deref(),
            Some("http://localhost:61161")
        );
        assert_eq!(
            component_origin("http://127.0.0.1:4000/").as_deref(),
            Some("http://127.0.0.1:4000")
        );
        assert_eq!(component_origin("http://localhost"), None);
        assert_eq!(component_origin("http://localhost:61161/popupForm"), None);
        assert_eq!(component_origin("ftp://localhost:61161"), None);
        assert_eq!(component_origin("http://localhost:0"), None);
        assert_eq!(component_origin("http://localhost:80"), None);
        assert_eq!(component_origin("https://localhost:443"), None);
        assert_eq!(
            component_origin("https://localhost:80").as_deref(),
            Some("https://localhost:80")
        );
        assert_eq!(component_origin("http://local host:1"), None);
    }

    #[test]
    fn oids() {
        assert!(is_oid("2.16.886.1.100.2.51"));
        assert!(!is_oid("2"));
        assert!(!is_oid("3.1"));
        assert!(!is_oid("1..2"));
        assert!(!is_oid("1.a"));
        assert!(is_http_url(
            "https://moica.nat.gov.tw/repository/MOICA/CRL2/complete.crl"
        ));
        assert!(!is_http_url("https:///x"));
        assert!(!is_http_url("http://a b"));
    }
}
