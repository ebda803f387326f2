//! `GET /.menshen/auth`: Menshen as the authorisation server of a proxy the school already runs
//! (nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`), with `[forward_auth]`.
//!
//! The proxy asks about the request it is holding, described in headers only a trusted proxy
//! may send: `X-Original-URL` (absolute, or a path with the `Host` header) and
//! `X-Original-Method` from nginx; `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method` from
//! Caddy and Traefik. The matching site's rules decide exactly as when Menshen proxies (the
//! same path checks, [`crate::proxy::checked_path`], and the same decision,
//! [`crate::proxy::Gateway::verdict`]). Answers: `200` with the identity headers (nginx takes
//! them with `auth_request_set`), `403` when the rules refuse, and when a sign-in is needed
//! either `401` with `X-Menshen-Login: <URL>` (nginx, which cannot pass a redirect on) or a
//! `302` to it (Caddy and Traefik, which hand the answer to the browser). Nothing is cached:
//! every answer says `no-store`, and a logout is seen on the next question.

use menshen_policies::access::Access;
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use crate::cookies;
use crate::handlers::encode_query_value;
use crate::proxy::{Ctx, Gateway, Verdict, checked_path};
use crate::respond::Reply;

/// The response header carrying the login URL on a 401 (for nginx's `error_page 401`).
pub const LOGIN_HEADER: &str = "X-Menshen-Login";

/// The request the proxy is asking about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Original {
    https: bool,
    host: String,
    path_and_query: String,
    /// Caddy/Traefik style (`X-Forwarded-Uri`): the proxy passes a redirect on to the browser.
    redirects: bool,
}

fn header<'r>(req: &'r RequestHeader, name: &str) -> Option<&'r str> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Reads the original request from the proxy's headers; `tls` is how the proxy's own request
/// arrived (the scheme when no header names one).
fn original(req: &RequestHeader, tls: bool) -> Result<Original, &'static str> {
    let proto_https = |default: bool| match header(req, "x-forwarded-proto") {
        Some(p) => p.eq_ignore_ascii_case("https"),
        None => default,
    };
    if let Some(url) = header(req, "x-original-url") {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, Some(rest))
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, Some(rest))
        } else {
            (proto_https(tls), None)
        };
        let (host, path_and_query) = match rest {
            Some(rest) => {
                let cut = rest.find('/').unwrap_or(rest.len());
                (rest[..cut].to_string(), rest[cut..].to_string())
            }
            None => (
                header(req, "host")
                    .ok_or("X-Original-URL is a path and there is no Host")?
                    .to_string(),
                url.to_string(),
            ),
        };
        return finish(https, host, path_and_query, false);
    }
    let host = header(req, "x-forwarded-host").ok_or("no X-Original-URL nor X-Forwarded-Host")?;
    let uri = header(req, "x-forwarded-uri").unwrap_or("/");
    finish(proto_https(tls), host.to_string(), uri.to_string(), true)
}

fn finish(
    https: bool,
    host: String,
    path_and_query: String,
    redirects: bool,
) -> Result<Original, &'static str> {
    if host.is_empty() || !path_and_query.starts_with('/') {
        return Err("the original URL must have a host and a path starting with '/'");
    }
    Ok(Original {
        https,
        host,
        path_and_query,
        redirects,
    })
}

/// Whether the request comes from a `[forward_auth]` trusted proxy.
pub fn from_trusted_proxy(gw: &Gateway, session: &Session) -> bool {
    let Some(fa) = &gw.state.config.forward_auth else {
        return false;
    };
    crate::proxy::client_ip(session)
        .is_some_and(|ip| fa.trusted_proxies.iter().any(|n| n.contains(&ip)))
}

/// Answers `GET /.menshen/auth`.
pub async fn answer(gw: &Gateway, session: &Session, ctx: &mut Ctx) -> Reply {
    if gw.state.config.forward_auth.is_none() {
        return Reply::text(404, "forward-auth is not configured ([forward_auth])\n");
    }
    if !from_trusted_proxy(gw, session) {
        return Reply::text(403, "forward-auth answers trusted proxies only\n");
    }
    let req = session.req_header();
    let original = match original(req, ctx.tls) {
        Ok(o) => o,
        Err(why) => return Reply::text(400, &format!("{why}\n")),
    };
    let Some(site) = gw.state.router.lookup(Some(&original.host)).cloned() else {
        return Reply::text(403, "the original host is not a configured site\n");
    };
    if site.portal {
        return Reply::text(403, "the portal is not behind forward-auth\n");
    }
    let (raw_path, _query) = original
        .path_and_query
        .split_once('?')
        .unwrap_or((&original.path_and_query, ""));
    let path = match checked_path(&site, raw_path) {
        Ok(p) => p,
        Err(detail) => return Reply::text(400, &format!("{detail}\n")),
    };
    if path.as_str() == "/.menshen" || path.as_str().starts_with("/.menshen/") {
        // Menshen's own pages: the proxy should send them to Menshen, never decide on them.
        return Reply::text(200, "");
    }
    let cookies = cookies::parse(
        req.headers
            .get_all(http::header::COOKIE)
            .iter()
            .map(|v| v.as_bytes()),
        ctx.names,
    );
    let access = site.config.rules.lookup(&path);
    let verdict = if *access == Access::Anonymous {
        Ok(Verdict::Allow(None))
    } else {
        gw.verdict(access, &cookies, ctx).await
    };
    match verdict {
        Ok(Verdict::Allow(identity)) => {
            let mut reply = Reply::text(200, "");
            if let Some(identity) = identity {
                reply.named_headers = site.identity.values(&identity).into();
            }
            reply
        }
        Ok(Verdict::Forbidden) => Reply::text(403, "forbidden by the site's rules\n"),
        Ok(Verdict::NeedLogin) => sign_in(gw, &original, None),
        Ok(Verdict::Unfinished(step)) => sign_in(gw, &original, Some(step)),
        Err(reply) => reply,
    }
}

/// Where the browser must go to sign in (or finish signing in), told the proxy's way.
fn sign_in(gw: &Gateway, original: &Original, step: Option<&str>) -> Reply {
    let scheme = if original.https { "https" } else { "http" };
    let url = match (&gw.state.portal, step) {
        (Some(portal), Some(step)) => {
            format!("{}{step}", portal.origin(original.https, &original.host))
        }
        (Some(portal), None) => portal.login_url(
            original.https,
            &original.host,
            &format!("{scheme}://{}{}", original.host, original.path_and_query),
        ),
        (None, Some(step)) => format!("{scheme}://{}{step}", original.host),
        (None, None) => format!(
            "{scheme}://{}/.menshen/login?rd={}",
            original.host,
            encode_query_value(&original.path_and_query)
        ),
    };
    if original.redirects {
        Reply::redirect(302, &url)
    } else {
        Reply::text(401, "sign-in required\n")
            .with_header(LOGIN_HEADER, url.clone())
            .with_header("WWW-Authenticate", format!("Menshen login=\"{url}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r =
            RequestHeader::build("GET", b"/.menshen/auth", None).unwrap_or_else(|e| panic!("{e}"));
        for (k, v) in headers {
            let _ = r.insert_header(k.to_string(), v.to_string());
        }
        r
    }

    #[test]
    fn nginx_and_caddy_describe_the_original_request() {
        let nginx = original(
            &req(&[("X-Original-URL", "https://registry.example/a/b?c=1")]),
            false,
        );
        assert_eq!(
            nginx,
            Ok(Original {
                https: true,
                host: "registry.example".into(),
                path_and_query: "/a/b?c=1".into(),
                redirects: false,
            })
        );
        let path_only = original(
            &req(&[("X-Original-URL", "/x"), ("Host", "hr.example:8080")]),
            false,
        );
        assert_eq!(
            path_only.map(|o| (o.host, o.https)),
            Ok(("hr.example:8080".into(), false))
        );
        let caddy = original(
            &req(&[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "registry.example"),
                ("X-Forwarded-Uri", "/students?id=7"),
            ]),
            false,
        );
        assert_eq!(
            caddy,
            Ok(Original {
                https: true,
                host: "registry.example".into(),
                path_and_query: "/students?id=7".into(),
                redirects: true,
            })
        );
        assert!(original(&req(&[]), false).is_err());
        assert!(original(&req(&[("X-Original-URL", "https://")]), false).is_err());
        assert!(
            original(
                &req(&[("X-Forwarded-Host", "a"), ("X-Forwarded-Uri", "x")]),
                false
            )
            .is_err()
        );
    }
}
