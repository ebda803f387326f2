//! Identity headers: never trusted from the client, always set from the verified session.
//!
//! Every incoming header in the `X-Menshen-` namespace, and every header named like one of the
//! site's configured identity headers, is removed, whatever its case and with `_` standing for
//! `-` (some upstream stacks such as CGI and PHP treat the two alike). Then the verified values
//! are inserted, just before the request goes upstream.

use http::HeaderName;
use menshen_config::HeaderNames;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pingora::http::RequestHeader;

use crate::sessions::SessionData;

/// The namespace every identity header lives in by default.
const NAMESPACE: &[u8] = b"x-menshen-";

/// Characters left as they are in percent-encoded header values.
const HEADER_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// The identity headers of one site, parsed once at start.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    user: HeaderName,
    name: HeaderName,
    roles: HeaderName,
    school: HeaderName,
    auth_method: HeaderName,
    /// Normalised (lowercase, `_` → `-`) names to strip besides the namespace.
    extra_strip: Vec<Vec<u8>>,
}

impl IdentityHeaders {
    pub fn new(names: &HeaderNames) -> anyhow::Result<Self> {
        let parse = |n: &str| HeaderName::from_bytes(n.as_bytes());
        let all = [
            &names.user,
            &names.name,
            &names.roles,
            &names.school,
            &names.auth_method,
        ];
        Ok(IdentityHeaders {
            user: parse(&names.user)?,
            name: parse(&names.name)?,
            roles: parse(&names.roles)?,
            school: parse(&names.school)?,
            auth_method: parse(&names.auth_method)?,
            extra_strip: all
                .iter()
                .map(|n| normalise(n.as_bytes()))
                .filter(|n| !n.starts_with(NAMESPACE))
                .collect(),
        })
    }

    fn must_strip(&self, name: &[u8]) -> bool {
        if has_prefix_folded(name, NAMESPACE) {
            return true;
        }
        self.extra_strip.iter().any(|s| eq_folded(name, s))
    }

    /// Removes every client-supplied identity header (all copies, any spelling).
    pub fn strip(&self, req: &mut RequestHeader) {
        let doomed: Vec<HeaderName> = req
            .headers
            .keys()
            .filter(|k| self.must_strip(k.as_str().as_bytes()))
            .cloned()
            .collect();
        for name in doomed {
            req.remove_header(&name);
        }
    }

    /// Inserts the verified identity of `session`.
    pub fn insert(&self, req: &mut RequestHeader, session: &SessionData) -> pingora::Result<()> {
        req.insert_header(self.user.clone(), encode(&session.login_name))?;
        req.insert_header(self.name.clone(), encode(&session.display_name))?;
        req.insert_header(self.roles.clone(), encode(&session.roles.join(",")))?;
        req.insert_header(self.school.clone(), encode(&session.school_code))?;
        req.insert_header(self.auth_method.clone(), session.auth_method.clone())?;
        Ok(())
    }
}

/// Header values carry raw bytes; anything that is not plain ASCII is percent-encoded as UTF-8
/// (`X-Menshen-Name: %E7%8E%8B%E5%B0%8F%E6%98%8E`). Plain values pass unchanged.
pub fn encode(value: &str) -> String {
    if value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b",-_.~@ ".contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
    {
        return value.to_string();
    }
    utf8_percent_encode(value, HEADER_VALUE).to_string()
}

fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        _ => b.to_ascii_lowercase(),
    }
}

fn normalise(name: &[u8]) -> Vec<u8> {
    name.iter().map(|b| fold(*b)).collect()
}

fn has_prefix_folded(name: &[u8], prefix: &[u8]) -> bool {
    name.len() >= prefix.len() && name.iter().zip(prefix).all(|(a, b)| fold(*a) == *b)
}

fn eq_folded(name: &[u8], normalised: &[u8]) -> bool {
    name.len() == normalised.len() && has_prefix_folded(name, normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> HeaderNames {
        HeaderNames {
            user: "X-Remote-User".into(),
            name: "X-Menshen-Name".into(),
            roles: "X-Menshen-Roles".into(),
            school: "X-Menshen-School".into(),
            auth_method: "X-Menshen-Auth-Method".into(),
        }
    }

    #[test]
    fn strips_every_spelling() -> anyhow::Result<()> {
        let ids = IdentityHeaders::new(&names())?;
        let mut req = RequestHeader::build("GET", b"/", None)?;
        for n in [
            "X-Menshen-User",
            "x-menshen-roles",
            "X_MENSHEN_USER",
            "x_menshen-school",
            "X-Remote-User",
            "x_remote_user",
            "X-Other",
        ] {
            req.append_header(n.to_string(), "spoof")?;
        }
        req.append_header("X-Menshen-User", "again")?;
        ids.strip(&mut req);
        let left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, vec!["x-other"]);
        Ok(())
    }

    #[test]
    fn encodes_non_ascii() {
        assert_eq!(encode("王小明"), "%E7%8E%8B%E5%B0%8F%E6%98%8E");
        assert_eq!(encode("aa,staff"), "aa,staff");
        assert_eq!(
            encode("a\r\nX-Evil: 1"),
            "a%0D%0AX%2DEvil%3A%201".replace("%2D", "-")
        );
    }
}
