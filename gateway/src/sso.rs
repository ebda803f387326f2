//! Single sign-on (單一簽入): the portal host, the URLs between it and the protected sites, and
//! the one-time codes that hand a signed-in person from the portal to a site.
//!
//! With `[portal]`, people sign in only on the portal. A site sends a visitor without a session
//! to `<portal>/.menshen/login?rd=<absolute URL>`; once the portal session is complete, the
//! portal answers with a redirect to `<site>/.menshen/handoff?code=…`. The code is 256 random
//! bits, stored only as a hash, single use (taken atomically, so two instances cannot both
//! redeem it), valid for [`CODE_TTL_SECS`], and names the one host that may redeem it and the
//! portal session it stands for. The site then sets its own host-only session cookie for a
//! site session linked to the portal session ([`crate::sessions::SessionData::portal`]).

use std::time::Duration;

use menshen_policies::redirect::{Origin, ReturnTarget, safe_return_url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::random;
use crate::routing::Router;
use crate::sessions::StoreError;
use crate::volatile::Volatile;

/// How long a hand-off code may be redeemed after it was issued.
pub const CODE_TTL_SECS: u64 = 60;

/// How long a redeemed code's marker is kept, so a replay is told apart from a made-up code.
const USED_MARKER_SECS: u64 = 300;

/// The portal host, from `[portal] host`.
#[derive(Debug, Clone)]
pub struct Portal {
    /// Lowercase host name, no port.
    name: String,
    /// The port in the configured host, if any.
    port: Option<u16>,
}

impl Portal {
    /// `host` is the canonical `[portal] host` (`name` or `name:port`).
    pub fn new(host: &str) -> Portal {
        let (name, port) = split_authority(host);
        Portal {
            name: name.to_string(),
            port,
        }
    }

    /// The portal's origin for a browser that reached the gateway as `request_host`
    /// (`host[:port]`): same scheme, and the port the browser used unless the configuration
    /// names one (all hosts are served by the same listeners).
    pub fn origin(&self, tls: bool, request_host: &str) -> String {
        origin_of(&self.name, self.port, tls, request_host)
    }

    /// Where a site sends a visitor who must sign in, returning to `return_url` afterwards.
    pub fn login_url(&self, tls: bool, request_host: &str, return_url: &str) -> String {
        format!(
            "{}/.menshen/login?rd={}",
            self.origin(tls, request_host),
            encode(return_url)
        )
    }

    /// Whether `origin` is the portal itself.
    pub fn is(&self, origin: &Origin, request_port: Option<u16>) -> bool {
        origin.host == self.name && origin.port == self.port.or(request_port)
    }

    /// Validates a return target given to the portal (the `rd` of its login): a local path,
    /// or an absolute URL to the portal or to a configured site's host, over the scheme the
    /// portal was reached with and on the port it was reached on (or one a site's host names
    /// in the configuration). Anything else is refused as an open redirect.
    pub fn return_target(
        &self,
        router: &Router,
        tls: bool,
        request_host: &str,
        rd: &str,
    ) -> Option<ReturnTarget> {
        let request_port = split_authority(request_host)
            .1
            .filter(|p| *p != default_port(tls));
        let target = safe_return_url(rd, |origin| {
            if origin.https != tls {
                return false;
            }
            if self.is(origin, request_port) {
                return true;
            }
            match router.exact(&origin.authority()) {
                Some((site, configured_port)) => {
                    !site.portal && (origin.port == request_port || configured_port.is_some())
                }
                None => false,
            }
        })?;
        // A URL of the portal itself is just a path here.
        Some(match target {
            ReturnTarget::Absolute { origin, path } if self.is(&origin, request_port) => {
                ReturnTarget::Local(path)
            }
            other => other,
        })
    }
}

/// The origin of a configured host (`name` or `name:port`) for a browser that reached the
/// gateway as `request_host`: same scheme, and that request's port unless the host names one.
pub fn host_origin(configured: &str, tls: bool, request_host: &str) -> String {
    let (name, port) = split_authority(configured);
    origin_of(name, port, tls, request_host)
}

fn origin_of(name: &str, port: Option<u16>, tls: bool, request_host: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    match port.or(split_authority(request_host).1) {
        Some(port) if port != default_port(tls) => format!("{scheme}://{name}:{port}"),
        _ => format!("{scheme}://{name}"),
    }
}

/// Where the browser goes once a login is complete: a local target as it is; an absolute one
/// (a site, with single sign-on) through the portal's login page, which hands the now complete
/// session over to that site at once.
pub fn landing(target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/.menshen/login?rd={}", encode(target))
    }
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn default_port(tls: bool) -> u16 {
    if tls { 443 } else { 80 }
}

/// Splits `host[:port]` (IPv6 literals keep their brackets). A port that is not a number is
/// ignored: such a host names no site anyway.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => (
                &authority[..=end],
                authority[end + 1..]
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok()),
            ),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => (name, port.parse().ok()),
        None => (authority, None),
    }
}

/// The request's Host in the form hand-off codes are bound to: lowercase, no trailing dot,
/// no default port.
pub fn canonical_host(request_host: &str, tls: bool) -> String {
    let lower = request_host.to_ascii_lowercase();
    let (name, port) = split_authority(&lower);
    let name = name.strip_suffix('.').unwrap_or(name);
    match port {
        Some(port) if port != default_port(tls) => format!("{name}:{port}"),
        _ => name.to_string(),
    }
}

/// What a hand-off code stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The only host that may redeem the code (`Origin::authority`).
    pub host: String,
    /// Where to send the browser on that host.
    pub path: String,
    /// Store key of the portal session the site session will belong to.
    pub portal_key: String,
    pub issued_at: u64,
}

/// What came of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Valid(Grant),
    /// Redeemed before (here or on another instance).
    Replayed,
    /// Not a code this gateway issued, or one whose record is long gone.
    Unknown,
    Expired(Grant),
    /// Issued for another host.
    WrongHost(Grant),
}

impl Redeemed {
    /// The metric label for this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Redeemed::Valid(_) => "redeemed",
            Redeemed::Replayed => "replayed",
            Redeemed::Unknown => "unknown",
            Redeemed::Expired(_) => "expired",
            Redeemed::WrongHost(_) => "wrong_host",
        }
    }
}

fn record_key(code: &str) -> String {
    format!("handoff:{}", hex::encode(Sha256::digest(code.as_bytes())))
}

fn used_key(code: &str) -> String {
    format!(
        "handoff-used:{}",
        hex::encode(Sha256::digest(code.as_bytes()))
    )
}

/// Stores a grant and returns its code.
pub async fn issue(volatile: &dyn Volatile, grant: &Grant) -> Result<String, StoreError> {
    let code = random::token();
    let value = serde_json::to_vec(grant).map_err(|e| StoreError(e.to_string()))?;
    // Kept a little past its validity so a late use is reported as expired, not unknown.
    volatile
        .put(
            &record_key(&code),
            &value,
            Duration::from_secs(CODE_TTL_SECS * 2),
        )
        .await?;
    Ok(code)
}

/// Takes the grant for `code` (at most once, across every instance) and checks it against
/// the host it is presented on.
pub async fn redeem(
    volatile: &dyn Volatile,
    code: &str,
    host: &str,
    now: u64,
) -> Result<Redeemed, StoreError> {
    if !random::is_token(code) {
        return Ok(Redeemed::Unknown);
    }
    let Some(raw) = volatile.take(&record_key(code)).await? else {
        return Ok(match volatile.get(&used_key(code)).await? {
            Some(_) => Redeemed::Replayed,
            None => Redeemed::Unknown,
        });
    };
    volatile
        .put(&used_key(code), b"1", Duration::from_secs(USED_MARKER_SECS))
        .await?;
    let Ok(grant) = serde_json::from_slice::<Grant>(&raw) else {
        return Ok(Redeemed::Unknown);
    };
    Ok(if now.saturating_sub(grant.issued_at) > CODE_TTL_SECS {
        Redeemed::Expired(grant)
    } else if grant.host != host {
        Redeemed::WrongHost(grant)
    } else {
        Redeemed::Valid(grant)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volatile::memory::MemoryVolatile;

    #[test]
    fn portal_origin_follows_the_request_scheme_and_port() {
        let p = Portal::new("login.school.example");
        assert_eq!(
            p.origin(true, "registry.school.example"),
            "https://login.school.example"
        );
        assert_eq!(
            p.origin(false, "registry.localhost:8080"),
            "http://login.school.example:8080"
        );
        assert_eq!(
            p.origin(true, "registry.school.example:443"),
            "https://login.school.example"
        );
        let fixed = Portal::new("login.school.example:8443");
        assert_eq!(
            fixed.origin(true, "registry.school.example"),
            "https://login.school.example:8443"
        );
        assert_eq!(
            p.login_url(
                true,
                "registry.school.example",
                "https://registry.school.example/a?b=1"
            ),
            "https://login.school.example/.menshen/login?rd=https%3A%2F%2Fregistry.school.example%2Fa%3Fb%3D1"
        );
    }

    #[test]
    fn landing_sends_absolute_targets_through_the_portal_login() {
        assert_eq!(landing("/students?x=1"), "/students?x=1");
        assert_eq!(landing("/"), "/");
        assert_eq!(
            landing("https://hr.school.example/x"),
            "/.menshen/login?rd=https%3A%2F%2Fhr.school.example%2Fx"
        );
    }

    #[test]
    fn hosts_are_compared_in_one_form() {
        assert_eq!(
            canonical_host("Registry.Example.", true),
            "registry.example"
        );
        assert_eq!(
            canonical_host("registry.example:443", true),
            "registry.example"
        );
        assert_eq!(
            canonical_host("registry.example:443", false),
            "registry.example:443"
        );
        assert_eq!(canonical_host("[::1]:8080", false), "[::1]:8080");
    }

    fn grant(now: u64) -> Grant {
        Grant {
            host: "hr.school.example".into(),
            path: "/x".into(),
            portal_key: "ab".repeat(32),
            issued_at: now,
        }
    }

    #[tokio::test]
    async fn a_code_is_redeemed_once_on_its_host_within_its_time() {
        let v = MemoryVolatile::new();
        let code = issue(&v, &grant(100)).await.unwrap_or_default();
        assert_eq!(code.len(), 43, "256 bits, base64url");
        assert_eq!(
            redeem(&v, &code, "hr.school.example", 110).await.ok(),
            Some(Redeemed::Valid(grant(100)))
        );
        assert_eq!(
            redeem(&v, &code, "hr.school.example", 111).await.ok(),
            Some(Redeemed::Replayed)
        );

        let code = issue(&v, &grant(100)).await.unwrap_or_default();
        assert_eq!(
            redeem(&v, &code, "registry.school.example", 101).await.ok(),
            Some(Redeemed::WrongHost(grant(100)))
        );
        // Presented on the wrong host, it is used up: the right host cannot have it later.
        assert_eq!(
            redeem(&v, &code, "hr.school.example", 102).await.ok(),
            Some(Redeemed::Replayed)
        );

        let code = issue(&v, &grant(100)).await.unwrap_or_default();
        assert_eq!(
            redeem(&v, &code, "hr.school.example", 100 + CODE_TTL_SECS + 1)
                .await
                .ok(),
            Some(Redeemed::Expired(grant(100)))
        );

        assert_eq!(
            redeem(&v, &random::token(), "hr.school.example", 100)
                .await
                .ok(),
            Some(Redeemed::Unknown)
        );
        assert_eq!(
            redeem(&v, "short", "hr.school.example", 100).await.ok(),
            Some(Redeemed::Unknown)
        );
    }
}
