//! The Pingora `ProxyHttp` implementation. It dispatches; small named units decide:
//! [`crate::routing`] (which site), `menshen_policies` (path normalisation and access rules),
//! [`crate::sessions`] (who is asking), [`crate::identity`] (what the upstream is told) and
//! [`crate::respond`] (what Menshen answers itself).

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use menshen_pages::{ErrorKind, Lang};
use menshen_policies::access::{Access, Decision, decide};
use menshen_policies::path::{NormalizedPath, double_encoded_separator, normalize, windows_alias};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::clock;
use crate::connections::ConnectionPermit;
use crate::cookies::{self, CookieNames, DEV_NAMES, RequestCookies, TLS_NAMES, TokenCookie};
use crate::forms;
use crate::forward_auth;
use crate::handlers::{self, encode_query_value};
use crate::metrics::CONNECTIONS_REFUSED;
use crate::respond::{self, Reply};
use crate::sessions::{SessionData, Stage};
use crate::sso;
use crate::state::{ACCOUNT_STALE_SECS, AppState, SiteRuntime};

pub struct Gateway {
    pub state: Arc<AppState>,
}

/// Per-request state.
pub struct Ctx {
    site: Option<Arc<SiteRuntime>>,
    pub(crate) tls: bool,
    pub(crate) names: CookieNames,
    lang: Lang,
    /// Set only when the request is to be proxied.
    upstream_uri: Option<http::Uri>,
    identity: Option<Arc<SessionData>>,
    outcome: &'static str,
    /// Our cookies that arrived more than once: whatever the answer, it clears them.
    clear_cookies: Vec<&'static str>,
    /// This connection's place under the connection caps: taken on its first request,
    /// carried to the next keep-alive request by Pingora, freed when the connection closes.
    connection: Option<Arc<ConnectionPermit>>,
}

/// What `request_filter` decided.
enum Next {
    Proxy,
    Answer(Reply),
}

impl Gateway {
    fn default_lang(&self) -> Lang {
        Lang::from_code(&self.state.config.login.default_language).unwrap_or(Lang::ZhTw)
    }

    /// `GET /.menshen/health`, on any listener and any Host: 200 when the session store and
    /// the account database answer, 503 otherwise (what load balancers and compose check).
    async fn health(&self) -> Reply {
        if !self
            .state
            .watch
            .is_fresh(clock::now_secs(), ACCOUNT_STALE_SECS)
        {
            return Reply::text(503, "account database unavailable\n");
        }
        match self.state.sessions.ping().await {
            Ok(()) => Reply::text(200, "ok\n"),
            Err(_) => Reply::text(503, "session store unavailable\n"),
        }
    }

    /// Counts a connection on its first request (a 503 "busy" answer, closing it, past a
    /// cap), and bounds how long a keep-alive connection may wait for its next request:
    /// Pingora would wait for ever.
    fn limit_connection(&self, session: &mut Session, ctx: &mut Ctx) -> Option<Reply> {
        if ctx.connection.is_none() {
            let ip = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip());
            match self.state.connections.admit(ip) {
                Ok(permit) => ctx.connection = Some(permit),
                Err(cap) => {
                    CONNECTIONS_REFUSED.with_label_values(&[cap.label()]).inc();
                    session.set_keepalive(None);
                    return Some(handlers::busy(ctx.lang));
                }
            }
        }
        // `Some(0)` is Pingora's "keep alive, no timeout" (HTTP/1.1 without `Connection:
        // close`); a connection that is to close, or HTTP/2, is left as it is.
        if session.get_keepalive() == Some(0) {
            let secs = self.state.config.connections.keepalive_timeout.as_secs();
            session.set_keepalive(Some(secs.max(1)));
        }
        None
    }

    async fn route(&self, session: &mut Session, ctx: &mut Ctx) -> Next {
        let req = session.req_header();
        if req.uri.path() == "/.menshen/health" {
            ctx.outcome = "menshen";
            return Next::Answer(self.health().await);
        }
        if req.uri.path() == "/.menshen/auth" {
            // Before any header is stripped: the original request is described in headers
            // only a trusted proxy may send (the endpoint checks the caller first).
            ctx.outcome = "menshen";
            return Next::Answer(forward_auth::answer(self, session, ctx).await);
        }
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()));
        let Some(site) = self.state.router.lookup(host).cloned() else {
            ctx.outcome = "bad_request";
            return Next::Answer(Reply::error(ctx.lang, ErrorKind::UnknownHost, None));
        };
        ctx.site = Some(site.clone());

        // Whatever happens next, no client-supplied identity header survives, nor any header a
        // legacy stack would take as routing or origin information from a trusted proxy
        // (Menshen sets `X-Forwarded-For`, `-Proto` and `-Host` itself).
        site.identity.strip(session.req_header_mut());

        let req = session.req_header();
        if !ctx.tls && !self.state.config.session.insecure_dev_cookie {
            ctx.outcome = "https_redirect";
            let host = host_without_port(req);
            let target = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Next::Answer(Reply::redirect(301, &format!("https://{host}{target}")));
        }
        if !target_is_utf8(req) {
            ctx.outcome = "bad_request";
            return Next::Answer(Reply::error(
                ctx.lang,
                ErrorKind::BadRequest,
                Some("the request target is not valid UTF-8"),
            ));
        }
        let path = match checked_path(&site, req.uri.path()) {
            Ok(p) => p,
            Err(detail) => {
                ctx.outcome = "bad_request";
                return Next::Answer(Reply::error(ctx.lang, ErrorKind::BadRequest, Some(&detail)));
            }
        };
        let cookies = cookies::parse(
            req.headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes()),
            ctx.names,
        );
        ctx.clear_cookies = cookies.duplicated(ctx.names);
        let query = req.uri.query().unwrap_or("");

        if path.as_str() == "/.menshen" || path.as_str().starts_with("/.menshen/") {
            ctx.outcome = "menshen";
            let Ok(query) = forms::parse(query.as_bytes()) else {
                return Next::Answer(Reply::error(
                    ctx.lang,
                    ErrorKind::BadRequest,
                    Some("the query string could not be decoded"),
                ));
            };
            ctx.lang = Lang::negotiate(
                query.get("lang").or(cookies.lang.as_deref()),
                header_str(req, http::header::ACCEPT_LANGUAGE),
                self.default_lang(),
            );
            let host = host_header(req);
            let raw_query = req.uri.query().unwrap_or("").to_string();
            let hreq = handlers::Request {
                same_origin: same_origin(req, ctx.tls, &host),
                host,
                tls: ctx.tls,
                raw_query: &raw_query,
                user_agent: header_str(req, http::header::USER_AGENT)
                    .unwrap_or("")
                    .chars()
                    .take(512)
                    .collect(),
                state: &self.state,
                site: &site,
                path: path.as_str(),
                query,
                method: req.method.clone(),
                cookies: &cookies,
                names: ctx.names,
                lang: ctx.lang,
                client_ip: client_ip(session),
            };
            // Boxed: the login flows' state is large, and inline it would be part of (and
            // allocated and moved with) every proxied request's future too.
            return Next::Answer(Box::pin(handlers::handle(session, &hreq)).await);
        }
        ctx.lang = Lang::negotiate(
            cookies.lang.as_deref(),
            header_str(req, http::header::ACCEPT_LANGUAGE),
            self.default_lang(),
        );

        if site.portal {
            // The portal proxies nothing: its root leads to the signed-in page.
            ctx.outcome = "menshen";
            return Next::Answer(if path.as_str() == "/" {
                Reply::redirect(302, "/.menshen/")
            } else {
                Reply::error(ctx.lang, ErrorKind::NotFound, None)
            });
        }
        let access = site.config.rules.lookup(&path);
        match access {
            Access::Anonymous => {
                // A half-finished login goes back to its step when it navigates to a public
                // page; anything else on a public path needs no session lookup (public pages
                // get no identity), so signed-in users' static files cost no store round trip.
                if cookies.session.value().is_some() && is_navigation(req) {
                    let session_data = match self.current_session(&cookies, ctx).await {
                        Ok(s) => s,
                        Err(reply) => return Next::Answer(reply),
                    };
                    if let Some(step) = session_data.as_deref().and_then(owed_step) {
                        return Next::Answer(self.unfinished(req, ctx, step));
                    }
                }
            }
            Access::Deny | Access::Authenticated | Access::Roles(_) => {
                match self.verdict(access, &cookies, ctx).await {
                    Ok(Verdict::Allow(identity)) => ctx.identity = identity,
                    Ok(Verdict::Forbidden) => {
                        ctx.outcome = "forbidden";
                        return Next::Answer(Reply::error(ctx.lang, ErrorKind::Forbidden, None));
                    }
                    Ok(Verdict::Unfinished(step)) => {
                        return Next::Answer(self.unfinished(req, ctx, step));
                    }
                    Ok(Verdict::NeedLogin) => {
                        return Next::Answer(self.login_required(req, ctx));
                    }
                    Err(reply) => return Next::Answer(reply),
                }
            }
        }

        ctx.outcome = "proxied";
        if path.as_str() == req.uri.path() {
            // Already canonical: the request line goes upstream as it came.
            return Next::Proxy;
        }
        let uri = match query {
            "" => path.to_uri_path(),
            q => format!("{}?{}", path.to_uri_path(), q),
        };
        match uri.parse::<http::Uri>() {
            Ok(u) => {
                ctx.upstream_uri = Some(u);
                Next::Proxy
            }
            Err(_) => {
                ctx.outcome = "bad_request";
                Next::Answer(Reply::error(ctx.lang, ErrorKind::BadRequest, None))
            }
        }
    }

    /// The live session named by the cookie, or the reply that ends the request (malformed
    /// cookie, store or database unreachable). It may come from the session cache; the
    /// account rules (disabled, sessions ended by a reset) are applied to it here either way.
    async fn current_session(
        &self,
        cookies: &RequestCookies,
        ctx: &mut Ctx,
    ) -> std::result::Result<Option<Arc<SessionData>>, Reply> {
        let id = match &cookies.session {
            TokenCookie::Absent | TokenCookie::Duplicated => return Ok(None),
            TokenCookie::Malformed => {
                ctx.outcome = "bad_request";
                return Err(Reply::error(
                    ctx.lang,
                    ErrorKind::BadRequest,
                    Some("the session cookie is malformed; it has been cleared, please sign in again"),
                )
                .with_cookie(cookies::clear(ctx.names.session, ctx.names)));
            }
            TokenCookie::Valid(id) => id,
        };
        let now = clock::now_secs();
        if !self.state.watch.is_fresh(now, ACCOUNT_STALE_SECS) {
            ctx.outcome = "unavailable";
            return Err(handlers::unavailable(ctx.lang));
        }
        match self.state.sessions.load_shared(id, now).await {
            Ok(Some(s)) if !self.state.watch.allows(&s.account_id, s.created_at) => {
                let _ = self.state.sessions.destroy(id).await;
                Ok(None)
            }
            Ok(s) => Ok(s),
            Err(e) => {
                tracing::warn!("{e}");
                ctx.outcome = "unavailable";
                Err(handlers::unavailable(ctx.lang))
            }
        }
    }

    /// What a site's rule (other than anonymous) decides with the session the cookies name:
    /// the one decision the proxy and the forward-auth endpoint share.
    pub(crate) async fn verdict(
        &self,
        access: &Access,
        cookies: &RequestCookies,
        ctx: &mut Ctx,
    ) -> std::result::Result<Verdict, Reply> {
        if *access == Access::Deny {
            return Ok(Verdict::Forbidden);
        }
        let session_data = self.current_session(cookies, ctx).await?;
        if let Some(step) = session_data.as_deref().and_then(owed_step) {
            return Ok(Verdict::Unfinished(step));
        }
        let roles = session_data
            .as_ref()
            .filter(|s| s.is_authenticated())
            .map(|s| s.roles.as_slice());
        Ok(match decide(access, roles) {
            Decision::Allow => Verdict::Allow(session_data),
            Decision::Forbidden => Verdict::Forbidden,
            Decision::NeedLogin => Verdict::NeedLogin,
        })
    }

    /// A session that still owes `step` (binding a second factor, or its OTP code) is sent
    /// back to it, whatever it asked for.
    fn unfinished(&self, req: &RequestHeader, ctx: &mut Ctx, step: &str) -> Reply {
        if is_navigation(req) {
            ctx.outcome = "login_redirect";
            Reply::redirect(302, step)
        } else {
            ctx.outcome = "unauthorized";
            Reply::text(401, "the login is not complete: finish it in the browser\n")
                .with_header("WWW-Authenticate", format!("Menshen login=\"{step}\""))
        }
    }

    /// No usable session: browsers navigating are sent to the login page, anything else
    /// (XHR, API clients, non-GET) gets a 401 it can act on.
    fn login_required(&self, req: &RequestHeader, ctx: &mut Ctx) -> Reply {
        if is_navigation(req) {
            ctx.outcome = "login_redirect";
            let target = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let location = match &self.state.portal {
                // Single sign-on: the portal signs the person in and hands them back here.
                Some(portal) => {
                    let host = host_header(req);
                    let scheme = if ctx.tls { "https" } else { "http" };
                    let back =
                        format!("{scheme}://{}{target}", sso::canonical_host(&host, ctx.tls));
                    portal.login_url(ctx.tls, &host, &back)
                }
                None => format!("/.menshen/login?rd={}", encode_query_value(target)),
            };
            Reply::redirect(302, &location)
        } else {
            ctx.outcome = "unauthorized";
            let login = match &self.state.portal {
                Some(portal) => format!(
                    "{}/.menshen/login",
                    portal.origin(ctx.tls, &host_header(req))
                ),
                None => "/.menshen/login".to_string(),
            };
            Reply::text(
                401,
                &format!("authentication required: sign in at {login}\n"),
            )
            .with_header("WWW-Authenticate", format!("Menshen login=\"{login}\""))
        }
    }
}

/// The rules must see the bytes the upstream gets: a target that is not UTF-8 reaches them as
/// a U+FFFD rendering while the raw bytes would go upstream, so it is refused. (Pingora 0.9's
/// HTTP/1 parser refuses such targets already; this keeps the rule ours whatever the parser or
/// protocol.)
fn target_is_utf8(req: &RequestHeader) -> bool {
    req.raw_path_is_utf8()
}

/// The client's address as logs, throttles and the upstream see it: an IPv4 client reaching a
/// dual-stack listener shows up as `::ffff:a.b.c.d`, and is recorded as `a.b.c.d`.
pub(crate) fn client_ip(session: &Session) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_canonical())
}

/// What a site's rules decided about a request ([`Gateway::verdict`]).
pub(crate) enum Verdict {
    /// Go ahead, with this identity (none on a public path).
    Allow(Option<Arc<SessionData>>),
    Forbidden,
    NeedLogin,
    /// The session still owes this login step.
    Unfinished(&'static str),
}

/// The login step a session still owes, if any.
fn owed_step(s: &SessionData) -> Option<&'static str> {
    match s.stage {
        Stage::MustBind => Some("/.menshen/bind"),
        Stage::NeedsSecondFactor => Some("/.menshen/otp"),
        Stage::Authenticated => None,
    }
}

/// The checks every request path passes before any rule looks at it (the proxy's and the
/// forward-auth endpoint's alike): normalisation, encoded separators, Windows aliases on
/// case-insensitive sites. The error is the reason, for the 400 page.
pub(crate) fn checked_path(
    site: &SiteRuntime,
    raw: &str,
) -> std::result::Result<NormalizedPath, String> {
    let path = normalize(raw).map_err(|e| e.to_string())?;
    let refusal = if !site.config.allow_double_encoded_separators && double_encoded_separator(&path)
    {
        Some("the path encodes a '%' that encodes a dot, slash or backslash")
    } else if site.config.rules.case_insensitive() {
        windows_alias(&path)
    } else {
        None
    };
    match refusal {
        Some(detail) => Err(detail.to_string()),
        None => Ok(path),
    }
}

/// Whether a request comes from a page of the origin it is sent to, as far as the browser
/// says. `Sec-Fetch-Site`, when sent, decides: `same-origin` or `none` (typed by the user);
/// a sibling host (`same-site`) is not trusted either. Without it (older browsers), an
/// `Origin` must be this scheme and host; `Origin: null` is what our own pages' no-referrer
/// policy makes some browsers send, so it proves nothing either way and the form's token
/// decides. State-changing forms are refused when this is false, whatever token they carry.
fn same_origin(req: &RequestHeader, tls: bool, host: &str) -> bool {
    if let Some(site) = header_str(req, http::header::HeaderName::from_static("sec-fetch-site")) {
        return site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none");
    }
    let Some(origin) = req.headers.get(http::header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if origin == "null" {
        return true;
    }
    let scheme = if tls { "https://" } else { "http://" };
    origin
        .get(..scheme.len())
        .filter(|p| p.eq_ignore_ascii_case(scheme))
        .and_then(|_| origin.get(scheme.len()..))
        .is_some_and(|o| sso::canonical_host(o, tls) == sso::canonical_host(host, tls))
}

fn header_str(req: &RequestHeader, name: http::header::HeaderName) -> Option<&str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The Host as sent (kept to characters a host can have).
fn host_header(req: &RequestHeader) -> String {
    header_str(req, http::header::HOST)
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(*c))
        .collect()
}

fn host_without_port(req: &RequestHeader) -> String {
    let host = header_str(req, http::header::HOST).unwrap_or("localhost");
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(*c))
        .collect()
}

/// A top-level browser navigation, as opposed to a script or API call.
fn is_navigation(req: &RequestHeader) -> bool {
    let method_ok = req.method == http::Method::GET || req.method == http::Method::HEAD;
    let xhr = req.headers.contains_key("x-requested-with");
    let accept_html =
        header_str(req, http::header::ACCEPT).is_some_and(|a| a.contains("text/html"));
    let mode = req
        .headers
        .get("sec-fetch-mode")
        .and_then(|v| v.to_str().ok());
    method_ok && !xhr && (mode == Some("navigate") || (mode.is_none() && accept_html))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            site: None,
            tls: false,
            names: DEV_NAMES,
            lang: self.default_lang(),
            upstream_uri: None,
            identity: None,
            outcome: "menshen",
            clear_cookies: Vec::new(),
            connection: None,
        }
    }

    fn on_connection_reuse(
        &self,
        _session: &mut Session,
        ctx: &mut Ctx,
        prev_ctx: Box<dyn Any + Send + Sync>,
    ) {
        if let Ok(permit) = prev_ctx.downcast::<Arc<ConnectionPermit>>() {
            ctx.connection = Some(*permit);
        }
    }

    fn persist_connection_context(
        &self,
        _session: &Session,
        ctx: &Ctx,
    ) -> Option<Box<dyn Any + Send + Sync>> {
        ctx.connection
            .clone()
            .map(|permit| Box::new(permit) as Box<dyn Any + Send + Sync>)
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.tls = session.digest().is_some_and(|d| d.ssl_digest.is_some())
            || (forward_auth::from_trusted_proxy(self, session)
                && header_str(
                    session.req_header(),
                    http::header::HeaderName::from_static("x-forwarded-proto"),
                )
                .is_some_and(|p| p.eq_ignore_ascii_case("https")));
        ctx.names = if ctx.tls { TLS_NAMES } else { DEV_NAMES };
        if let Some(reply) = self.limit_connection(session, ctx) {
            respond::send(session, reply, ctx.tls, &self.state.csp).await?;
            return Ok(true);
        }
        match self.route(session, ctx).await {
            Next::Proxy => Ok(false),
            Next::Answer(mut reply) => {
                for name in ctx.clear_cookies.iter().rev() {
                    reply = reply.with_cookie_first(cookies::clear(name, ctx.names));
                }
                respond::send(session, reply, ctx.tls, &self.state.csp).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let site = ctx
            .site
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no site chosen"))?;
        let addr = site
            .pick_upstream()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "site has no upstream"))?;
        let sni = site
            .config
            .upstream_sni
            .clone()
            .or_else(|| site.config.hosts.first().cloned())
            .unwrap_or_default();
        Ok(Box::new(HttpPeer::new(addr, site.config.upstream_tls, sni)))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(uri) = ctx.upstream_uri.take() {
            upstream.set_uri(uri);
        }
        if let (Some(site), Some(identity)) = (&ctx.site, &ctx.identity) {
            site.identity.insert(upstream, identity)?;
        }
        // The legacy app never sees Menshen's cookies (rewritten only when one is there).
        let ours = upstream
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .any(|v| cookies::mentions_ours(v.as_bytes()));
        if ours {
            let cookie_headers: Vec<Vec<u8>> = upstream
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect();
            upstream.remove_header(&http::header::COOKIE);
            for value in cookie_headers {
                if let Some(kept) = cookies::without_ours(&value, ctx.names) {
                    upstream.append_header(http::header::COOKIE, kept)?;
                }
            }
        }
        // Menshen is the edge: what the client claims about forwarding is replaced.
        if let Some(ip) = client_ip(session) {
            upstream.insert_header("X-Forwarded-For", ip.to_string())?;
        }
        upstream.insert_header("X-Forwarded-Proto", if ctx.tls { "https" } else { "http" })?;
        if let Some(host) = upstream.headers.get(http::header::HOST).cloned() {
            upstream.insert_header("X-Forwarded-Host", host)?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        for name in &ctx.clear_cookies {
            upstream.append_header(http::header::SET_COOKIE, cookies::clear(name, ctx.names))?;
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        let reply = match code {
            0 => None,
            502 | 504 => {
                ctx.outcome = "upstream_error";
                Some(Reply::error(ctx.lang, ErrorKind::UpstreamDown, None))
            }
            400 => {
                ctx.outcome = "bad_request";
                Some(Reply::error(ctx.lang, ErrorKind::BadRequest, None))
            }
            _ => {
                ctx.outcome = "upstream_error";
                Some(Reply::text(code, "internal error\n"))
            }
        };
        if let Some(reply) = reply
            && session.response_written().is_none()
        {
            let _ = respond::send(session, reply, ctx.tls, &self.state.csp).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, _session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        if let Some(site) = &ctx.site {
            site.count(ctx.outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_that_are_not_utf8_are_told_apart() -> Result<()> {
        for raw in [
            &b"/public/\xff"[..],
            b"/a\xc0\xae",
            b"/x?q=\xfe",
            b"http://h/a\x80",
        ] {
            let req = RequestHeader::build("GET", raw, None)?;
            assert!(!target_is_utf8(&req), "{}", String::from_utf8_lossy(raw));
        }
        for raw in [&b"/public/x"[..], "/學籍?q=é".as_bytes(), b"http://h/a"] {
            let req = RequestHeader::build("GET", raw, None)?;
            assert!(target_is_utf8(&req), "{}", String::from_utf8_lossy(raw));
        }
        Ok(())
    }
}
