//! The one place that turns outcomes into HTTP responses Menshen writes itself: pages,
//! redirects, static files and plain statuses, each with the security headers.

use bytes::Bytes;
use menshen_pages::{ErrorKind, ErrorPage, Lang};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// Content Security Policy for every Menshen page: only our own scripts and styles, no
/// plugins, never framed (clickjacking), forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The deployment's policy: [`CSP`], where with single sign-on forms may also lead to the
/// other hosts of the gateway (`form-action` covers the redirects after a submission too: the
/// portal's OTP step hands off to a site, a site's logout lands on the portal). `hosts` are
/// canonical configured hosts (`name` or `name:port`), so they cannot add directives.
pub fn policy(hosts: &[&str], dev_http: bool) -> String {
    if hosts.is_empty() {
        return CSP.to_string();
    }
    let schemes: &[&str] = if dev_http {
        &["https", "http"]
    } else {
        &["https"]
    };
    let mut sources = String::new();
    for host in hosts {
        let with_port = if host.ends_with(']') || !host.contains(':') {
            format!("{host}:*")
        } else {
            (*host).to_string()
        };
        for scheme in schemes {
            sources.push_str(&format!(" {scheme}://{with_port}"));
        }
    }
    CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self'{sources}"),
    )
}

/// `policy` plus the HiPKI component's origin for images and fetches: the certificate pages
/// read the card reader's state from it. `origin` is validated by the configuration
/// (scheme, host, port only), so it cannot add directives.
pub fn csp_with_component(policy: &str, origin: &str) -> String {
    policy.replace(
        "img-src 'self' data:;",
        &format!("img-src 'self' data: {origin}; connect-src 'self' {origin};"),
    )
}

/// A response Menshen writes itself.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
    /// Headers whose names come from the configuration (identity headers in forward-auth
    /// answers).
    pub named_headers: Vec<(http::HeaderName, String)>,
    /// Auth pages and anything user-specific must never be cached; static assets may be.
    pub cacheable: bool,
}

impl Reply {
    pub fn html(status: u16, html: String) -> Self {
        Reply {
            status,
            content_type: "text/html; charset=utf-8",
            body: Bytes::from(html),
            headers: Vec::new(),
            named_headers: Vec::new(),
            cacheable: false,
        }
    }

    pub fn text(status: u16, text: &str) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::copy_from_slice(text.as_bytes()),
            headers: Vec::new(),
            named_headers: Vec::new(),
            cacheable: false,
        }
    }

    /// `status` is 302 for navigations and 303 after a form POST.
    pub fn redirect(status: u16, location: &str) -> Self {
        let mut r = Reply::text(status, "");
        r.headers.push(("Location", location.to_string()));
        r
    }

    pub fn error(lang: Lang, kind: ErrorKind, detail: Option<&str>) -> Self {
        let html = menshen_pages::render_error(&ErrorPage { lang, kind, detail });
        Reply::html(kind.status(), html)
    }

    pub fn asset(content_type: &'static str, body: &'static [u8]) -> Self {
        Reply {
            status: 200,
            content_type,
            body: Bytes::from_static(body),
            headers: Vec::new(),
            named_headers: Vec::new(),
            cacheable: true,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_cookie(self, set_cookie: String) -> Self {
        self.with_header("Set-Cookie", set_cookie)
    }

    /// Puts a `Set-Cookie` before every other one, so a cookie this reply also sets anew (a
    /// fresh CSRF token) is set after the clearing, not cleared by it.
    pub fn with_cookie_first(mut self, set_cookie: String) -> Self {
        self.headers.insert(0, ("Set-Cookie", set_cookie));
        self
    }
}

/// Writes `reply` to the client, keeping the connection open (unlike Pingora's
/// `respond_error`, which closes it).
pub async fn send(
    session: &mut Session,
    reply: Reply,
    tls: bool,
    policy: &str,
) -> pingora::Result<()> {
    let mut h = ResponseHeader::build(reply.status, Some(8 + reply.headers.len()))?;
    h.insert_header("Content-Type", reply.content_type)?;
    h.insert_header("Content-Length", reply.body.len().to_string())?;
    // A reply may carry its own policy (the certificate pages); every other gets `policy`.
    let mut headers = reply.headers;
    match headers
        .iter()
        .position(|(name, _)| *name == "Content-Security-Policy")
    {
        Some(i) => {
            let (_, policy) = headers.remove(i);
            h.insert_header("Content-Security-Policy", policy)?;
        }
        None => h.insert_header("Content-Security-Policy", policy)?,
    }
    h.insert_header("X-Content-Type-Options", "nosniff")?;
    h.insert_header("X-Frame-Options", "DENY")?;
    h.insert_header("Referrer-Policy", "no-referrer")?;
    h.insert_header(
        "Cache-Control",
        if reply.cacheable {
            "public, max-age=3600"
        } else {
            "no-store"
        },
    )?;
    if tls {
        h.insert_header("Strict-Transport-Security", "max-age=31536000")?;
    }
    for (name, value) in headers {
        h.append_header(name, value)?;
    }
    for (name, value) in reply.named_headers {
        h.append_header(name, value)?;
    }
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(h), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(reply.body), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_sign_on_lets_forms_lead_to_the_gateway_hosts_only() {
        assert_eq!(policy(&[], false), CSP);
        let p = policy(
            &["login.school.example", "hr.school.example:8443", "[::1]"],
            false,
        );
        assert!(p.ends_with(
            "form-action 'self' https://login.school.example:* https://hr.school.example:8443 https://[::1]:*"
        ), "{p}");
        let dev = policy(&["login.localhost"], true);
        assert!(
            dev.ends_with("form-action 'self' https://login.localhost:* http://login.localhost:*")
        );
        let with_card = csp_with_component(&p, "http://localhost:61161");
        assert!(with_card.contains("connect-src 'self' http://localhost:61161;"));
        assert!(with_card.contains("https://hr.school.example:8443"));
    }
}
