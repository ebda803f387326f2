//! `[portal]`: the single sign-on host (單一簽入). With it, every interactive page lives on
//! this host only and the protected sites receive signed-in people through a hand-off.

use std::path::Path;

use crate::host;
use crate::model::{Portal, Site};
use crate::reader::{Cx, Table};

/// Reads `[portal]` and checks it against the sites read before it. `can_set_cookies`: a
/// listener has `tls`, or development cookies work over plain HTTP. `certificates`: the TLS
/// listeners' certificate files (read when file checks are on: one must name the portal).
pub(super) fn portal(
    root: &mut Table<'_, '_>,
    cx: &mut Cx<'_>,
    sites: &[Site],
    can_set_cookies: bool,
    certificates: &[&Path],
) -> Option<Portal> {
    let mut table = root.table(cx, "portal")?;
    let table_span = table.span();
    table.require(cx, "host");
    let text = table.string(cx, "host");
    table.finish(cx);
    let text = text?;
    let parsed = match host::parse_configured(&text.value) {
        Ok(parsed) => parsed,
        Err(problem) => {
            cx.error(&text.span, format!("`portal.host`: {problem}"));
            return None;
        }
    };
    if parsed.name == "*" {
        cx.error(
            &text.span,
            "`portal.host` must name one host; `*` would put the sign-in pages on every host",
        );
        return None;
    }
    let canonical = parsed.to_canonical();
    for site in sites {
        for site_host in &site.hosts {
            if site_host == "*" {
                cx.error(
                    &text.span,
                    format!(
                        "with [portal], site \"{}\" must list its hosts: the catch-all `*` \
                         cannot receive a single sign-on hand-off (and would make every host \
                         a valid return target)",
                        site.name
                    ),
                );
            } else if host::split(site_host).is_some_and(|h| h.name == parsed.name) {
                cx.error(
                    &text.span,
                    format!(
                        "`portal.host` \"{canonical}\" is also a host of site \"{}\": the \
                         portal must have a host of its own, so no legacy app shares its origin",
                        site.name
                    ),
                );
            }
        }
    }
    // Production cookies are `__Host-` and `Secure`: the portal can only set them over TLS.
    if !can_set_cookies {
        cx.error(
            &table_span,
            "[portal] needs a [[listen]] with `tls` to serve the portal host over HTTPS \
             (or `session.insecure_dev_cookie = true` for development)",
        );
    }
    if cx.check_files && !certificates.is_empty() {
        let names: Vec<String> = certificates
            .iter()
            .flat_map(|c| certificate_names(c))
            .collect();
        if !names.iter().any(|n| name_matches(n, &parsed.name)) {
            let files = certificates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            cx.error(
                &text.span,
                format!(
                    "`portal.host` \"{}\" is not named by the TLS certificate ({files}): \
                     browsers would refuse the portal; add it to the certificate",
                    parsed.name
                ),
            );
        }
    }
    Some(Portal { host: canonical })
}

/// The DNS names and IP addresses a PEM certificate file's first certificate is valid for
/// (subject alternative names; nothing when the file cannot be read or parsed, which the
/// listener's own check reports).
fn certificate_names(path: &Path) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let Some(Ok(pem)) = x509_parser::pem::Pem::iter_from_buffer(&bytes).next() else {
        return Vec::new();
    };
    let Ok(cert) = pem.parse_x509() else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => <[u8; 4]>::try_from(*ip)
                    .ok()
                    .map(|o| std::net::Ipv4Addr::from(o).to_string()),
                16 => <[u8; 16]>::try_from(*ip)
                    .ok()
                    .map(|o| format!("[{}]", std::net::Ipv6Addr::from(o))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Whether a certificate name covers `host`: equal, or a `*.` wildcard for exactly one label.
fn name_matches(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == host,
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("login.school.example", "login.school.example"));
        assert!(name_matches("*.school.example", "login.school.example"));
        assert!(!name_matches("*.school.example", "a.login.school.example"));
        assert!(!name_matches("*.school.example", "school.example"));
        assert!(!name_matches(
            "registry.school.example",
            "login.school.example"
        ));
    }
}
