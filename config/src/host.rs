//! Host names as they appear in `[[site]] hosts` and in request `Host` headers, in one
//! canonical form so the two can be compared.

use std::net::Ipv6Addr;

/// A host name with an optional port, canonicalised: lowercase, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPort<'a> {
    /// Lowercase name without the trailing dot; IPv6 literals keep their brackets.
    pub(crate) name: std::borrow::Cow<'a, str>,
    pub(crate) port: Option<u16>,
}

impl HostPort<'_> {
    /// The form stored in [`crate::Site::hosts`]: `name` or `name:port`.
    pub(crate) fn to_canonical(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.name),
            None => self.name.clone().into_owned(),
        }
    }
}

/// Splits `host[:port]` and canonicalises the name. Returns `None` when the port is not a
/// number or the brackets of an IPv6 literal do not close; the name itself is not checked,
/// because a request host that matches no site is simply not found.
pub(crate) fn split(text: &str) -> Option<HostPort<'_>> {
    let (name, port) = if text.starts_with('[') {
        let close = text.find(']')?;
        let (name, after) = text.split_at(close + 1);
        match after {
            "" => (name, None),
            _ => (name, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        }
    };
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.parse::<u16>().ok()?)
        }
        Some(_) => return None,
        None => None,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    };
    Some(HostPort { name, port })
}

/// Parses and checks a host written in the configuration. Stricter than [`split`]: the name
/// must be a DNS name, an IPv4 address or a bracketed IPv6 address, and port 0 is refused
/// because no browser sends it. `*` is the catch-all: the site for any Host no other site
/// names (the demo uses it; so can a gateway that protects a single app).
pub(crate) fn parse_configured(text: &str) -> Result<HostPort<'_>, String> {
    if text == "*" {
        return Ok(HostPort {
            name: std::borrow::Cow::Borrowed("*"),
            port: None,
        });
    }
    let shape = "expected a host name such as \"registry.school.example\", optionally with \
                 \":port\"";
    let host = split(text).ok_or_else(|| format!("invalid host \"{text}\"; {shape}"))?;
    if host.port == Some(0) {
        return Err(format!("invalid port 0 in host \"{text}\""));
    }
    let valid = if let Some(inner) = host
        .name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
    {
        inner.parse::<Ipv6Addr>().is_ok()
    } else {
        !host.name.is_empty()
            && host.name.len() <= 253
            && host.name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    };
    if valid {
        Ok(host)
    } else {
        Err(format!("invalid host \"{text}\"; {shape}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalises_case_trailing_dot_and_port() {
        assert_eq!(parse_configured("*").unwrap().to_canonical(), "*");
        let host = parse_configured("Registry.School.Example.:8443").unwrap();
        assert_eq!(host.to_canonical(), "registry.school.example:8443");
        assert_eq!(
            parse_configured("[::1]:80").unwrap().to_canonical(),
            "[::1]:80"
        );
        assert_eq!(
            parse_configured("10.0.0.5").unwrap().to_canonical(),
            "10.0.0.5"
        );
    }

    #[test]
    fn refuses_malformed_hosts() {
        for bad in [
            "",
            "a..b",
            "-a.example",
            "a.example:",
            "a.example:x",
            "a.example:0",
            "a.example:70000",
            "*.example",
            "a b",
            "::1",
            "[zz]",
            "https://a.example",
        ] {
            assert!(parse_configured(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
