//! Identity headers: never trusted from the client, always set from the verified session.
//!
//! Every incoming header in the `X-Menshen-` namespace, every header named like one of the
//! site's configured identity headers, and every forwarding header the site does not trust
//! from clients (`menshen_policies::headers`) is removed, whatever its case and with `_`
//! standing for `-` (CGI, PHP and IIS treat the two alike). Then the verified values are
//! inserted, just before the request goes upstream.

use http::HeaderName;
use menshen_config::HeaderNames;
use menshen_policies::headers::HeaderMatcher;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use pingora::http::RequestHeader;

use crate::sessions::SessionData;

/// The namespace every identity header lives in by default.
const NAMESPACE: &str = "x-menshen-";

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
    /// What a client may not send: the namespace, the identity names and `untrusted`
    /// forwarding headers, in one matcher so a request's headers are looked at once.
    strip: HeaderMatcher,
}

impl IdentityHeaders {
    /// `untrusted`: the site's forwarding headers to remove too (`Site::untrusted_headers`).
    pub fn new(names: &HeaderNames, untrusted: &[String]) -> anyhow::Result<Self> {
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
            strip: HeaderMatcher::new(
                all.iter()
                    .map(|n| n.as_str())
                    .chain(untrusted.iter().map(String::as_str)),
                [NAMESPACE],
            ),
        })
    }

    /// Removes every client-supplied identity or untrusted forwarding header (all copies, any
    /// spelling), in one pass over the headers present.
    pub fn strip(&self, req: &mut RequestHeader) {
        let doomed: Vec<HeaderName> = req
            .headers
            .keys()
            .filter(|k| self.strip.matches(k.as_str().as_bytes()))
            .cloned()
            .collect();
        for name in doomed {
            req.remove_header(&name);
        }
    }

    /// Inserts the verified identity of `session`.
    pub fn insert(&self, req: &mut RequestHeader, session: &SessionData) -> pingora::Result<()> {
        for (name, value) in self.values(session) {
            req.insert_header(name, value)?;
        }
        Ok(())
    }

    /// The verified identity of `session` as (header, value) pairs, encoded for a header.
    pub fn values(&self, session: &SessionData) -> [(HeaderName, String); 5] {
        [
            (self.user.clone(), encode(&session.login_name)),
            (self.name.clone(), encode(&session.display_name)),
            (self.roles.clone(), encode(&session.roles.join(","))),
            (self.school.clone(), encode(&session.school_code)),
            (self.auth_method.clone(), session.auth_method.clone()),
        ]
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
        let untrusted = vec!["x-original-url".to_owned(), "client-ip".to_owned()];
        let ids = IdentityHeaders::new(&names(), &untrusted)?;
        let mut req = RequestHeader::build("GET", b"/", None)?;
        for n in [
            "X-Menshen-User",
            "x-menshen-roles",
            "X_MENSHEN_USER",
            "x_menshen-school",
            "X-Remote-User",
            "x_remote_user",
            "X_Original_URL",
            "x-original-url",
            "Client_IP",
            "X-Other",
            "X-Real-IP",
        ] {
            req.append_header(n.to_string(), "spoof")?;
        }
        req.append_header("X-Menshen-User", "again")?;
        ids.strip(&mut req);
        let mut left: Vec<&str> = req.headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        // X-Real-IP is not in this site's `untrusted` list.
        assert_eq!(left, vec!["x-other", "x-real-ip"]);
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
