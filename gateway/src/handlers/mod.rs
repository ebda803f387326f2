//! Requests under the reserved `/.menshen/` prefix: Menshen's own pages. Nothing under it is
//! ever proxied. One module per flow; this one dispatches.

pub mod account;
pub mod bind;
pub mod certificate;
pub mod handoff;
pub mod home;
pub mod login;
pub mod logout;
pub mod mobile;
pub mod notices;
pub mod oidc;
pub mod otp;
pub mod password;
pub mod reauth;

use std::net::IpAddr;

use menshen_pages::{ErrorKind, Lang};
use pingora::proxy::Session;

use subtle::ConstantTimeEq;

use crate::accounts::{Account, Activity};
use crate::clock;
use crate::cookies::{CookieNames, RequestCookies};
use crate::forms::{self, Form, FormError};
use crate::respond::Reply;
use crate::sessions::{SessionData, Stage};
use crate::state::{AppState, SiteRuntime};

/// What a handler knows about the request besides the body.
pub struct Request<'a> {
    pub user_agent: String,
    /// The Host the browser used (for redirect URIs registered at OpenID providers).
    pub host: String,
    pub state: &'a AppState,
    pub site: &'a SiteRuntime,
    /// The normalised path.
    pub path: &'a str,
    pub query: Form,
    pub method: http::Method,
    pub cookies: &'a RequestCookies,
    pub names: CookieNames,
    pub lang: Lang,
    pub client_ip: Option<IpAddr>,
    /// Whether the browser reached Menshen over TLS.
    pub tls: bool,
    /// The query string as sent (for redirects that keep it).
    pub raw_query: &'a str,
    /// False when the browser says the request comes from another origin's page
    /// (`Sec-Fetch-Site`, `Origin`); such a POST is refused whatever token it carries.
    pub same_origin: bool,
}

impl Request<'_> {
    /// The client address as text (empty when unknown), as sessions and the activity log keep it.
    pub fn client_ip_text(&self) -> String {
        self.client_ip.map(|ip| ip.to_string()).unwrap_or_default()
    }

    /// The browser, summarised as a session keeps it.
    pub fn device(&self) -> String {
        menshen_pages::browser_summary(&self.user_agent)
    }

    /// The name the pages show under the product name: the site's, or none on the portal
    /// (which serves every site; the pages then show the tagline).
    pub fn site_name(&self) -> &str {
        if self.site.portal {
            ""
        } else {
            self.site
                .config
                .display_name
                .as_deref()
                .unwrap_or(&self.site.config.name)
        }
    }

    /// With single sign-on, this host is a protected site (not the portal): its `/.menshen/`
    /// keeps only the hand-off, logout and static files.
    pub fn on_site_with_portal(&self) -> Option<&crate::sso::Portal> {
        self.state.portal.as_ref().filter(|_| !self.site.portal)
    }

    /// The portal's URL for `path_and_query`, or the path itself without single sign-on.
    pub fn portal_url(&self, path_and_query: &str) -> String {
        match &self.state.portal {
            Some(portal) => format!("{}{path_and_query}", portal.origin(self.tls, &self.host)),
            None => path_and_query.to_string(),
        }
    }
}

/// The suspension rule the pages state: `failures` in a row, for the configured time (in
/// whole minutes, rounded up).
fn lockout_rule(failures: u32, req: &Request<'_>) -> menshen_pages::LockoutRule {
    menshen_pages::LockoutRule {
        failures,
        minutes: req.state.config.lockout.duration.as_secs().div_ceil(60),
    }
}

/// Answers one request under `/.menshen/`.
pub async fn handle(session: &mut Session, req: &Request<'_>) -> Reply {
    let rest = req.path.strip_prefix("/.menshen").unwrap_or("");
    let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
    let post = req.method == http::Method::POST;
    if !get && !req.same_origin {
        return Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some("a form sent from another site's page is refused; reload this page and try again"),
        );
    }
    if req.on_site_with_portal().is_some()
        && !(rest == "/handoff" || rest == "/logout" || rest.starts_with("/static/"))
    {
        // Sign-in and account pages never render on a legacy app's origin: the same page on
        // the portal (307 keeps a form's method; the portal then refuses it as cross-site).
        let target = match req.raw_query {
            "" => req.path.to_string(),
            q => format!("{}?{q}", req.path),
        };
        return Reply::redirect(if get { 302 } else { 307 }, &req.portal_url(&target));
    }
    // A session that still owes a binding may reach only the binding pages (and logout,
    // static files, captcha pictures); one that owes its OTP code only the OTP page.
    // The certificate endpoints check the session's stage themselves (a binding session
    // must reach them).
    let always_open = rest == "/logout"
        || rest.starts_with("/static/")
        || rest.starts_with("/captcha/")
        || rest.starts_with("/certificate/")
        || rest == "/mobile"
        || rest.starts_with("/mobile/")
        || rest == "/help"
        || rest == "/password/forgot"
        || rest == "/password/reset";
    if !always_open && let Some(stage) = stage_of(req).await {
        match stage {
            Ok(Stage::MustBind) if !(rest == "/bind" || rest.starts_with("/bind/")) => {
                return Reply::redirect(if post { 303 } else { 302 }, "/.menshen/bind");
            }
            Ok(Stage::NeedsSecondFactor) if rest != "/otp" => {
                return Reply::redirect(if post { 303 } else { 302 }, "/.menshen/otp");
            }
            Err(reply) => return reply,
            _ => {}
        }
    }
    match rest {
        "" | "/" if get => home::get(req).await,
        "/login" if get => login::get(req).await,
        "/login" if post => login::post(session, req).await,
        "/logout" if get => logout::get(req).await,
        "/logout" if post => logout::post(session, req).await,
        "/handoff" if get && req.on_site_with_portal().is_some() => handoff::redeem(req).await,
        "/otp" if get => otp::get(req).await,
        "/otp" if post => otp::post(session, req).await,
        "/bind" if get => bind::page(req).await,
        "/bind/otp" if get => bind::otp_get(req).await,
        "/bind/otp" if post => bind::otp_post(session, req).await,
        "/bind/certificate" if get => bind::certificate(req).await,
        "/bind/certificate" if post => certificate::verify_binding(session, req).await,
        "/certificate" if get => certificate::page(req).await,
        "/mobile" if get => mobile::page(req).await,
        "/mobile" if post => mobile::start(session, req).await,
        "/mobile/wait" if get => mobile::wait(req).await,
        "/mobile/status" if get => mobile::status(req).await,
        "/mobile/cancel" if post => mobile::cancel(session, req).await,
        "/bind/mobile" if get => mobile::bind_page(req).await,
        "/account" if get => account::get(req).await,
        "/help" if get => password::help(req).await,
        "/password/forgot" if get => password::forgot_get(req).await,
        "/password/forgot" if post => password::forgot_post(session, req).await,
        "/password/reset" if get => password::reset_get(req).await,
        "/password/reset" if post => password::reset_post(session, req).await,
        "/password/change" if get => password::change_get(req).await,
        "/password/change" if post => password::change_post(session, req).await,
        "/certificate/challenge" if post => certificate::challenge(session, req).await,
        "/certificate/verify" if post => certificate::verify(session, req).await,
        "/login" | "/logout" | "" | "/" | "/otp" | "/bind" | "/bind/otp" | "/bind/certificate"
        | "/certificate" | "/mobile" | "/mobile/wait" | "/mobile/status" | "/mobile/cancel"
        | "/bind/mobile" | "/help" | "/password/forgot" | "/password/reset"
        | "/password/change" => Reply::error(req.lang, ErrorKind::MethodNotAllowed, None)
            .with_header(
                "Allow",
                match rest {
                    "/certificate" | "/mobile/wait" | "/mobile/status" | "/bind/mobile"
                    | "/help" => "GET, HEAD",
                    "/mobile/cancel" => "POST",
                    _ => "GET, HEAD, POST",
                }
                .to_string(),
            ),
        _ => {
            if let Some(name) = rest.strip_prefix("/static/").filter(|_| get) {
                match menshen_pages::static_asset(name) {
                    Some(asset) => Reply::asset(asset.content_type, asset.body),
                    None => Reply::error(req.lang, ErrorKind::NotFound, None),
                }
            } else if let Some(name) = rest.strip_prefix("/captcha/").filter(|_| get) {
                login::captcha_picture(req, name).await
            } else if let Some(flow) = rest.strip_prefix("/oidc/").filter(|_| get || post) {
                match (flow.split_once('/'), post) {
                    (Some((id, "start")), false) => oidc::start(req, id).await,
                    (Some((id, "start")), true) => oidc::start_bind(session, req, id).await,
                    (Some((id, "callback")), false) => oidc::callback(req, id).await,
                    _ => Reply::error(req.lang, ErrorKind::NotFound, None),
                }
            } else if rest == "/account/sessions/end-all" && post {
                account::end_sign_in(session, req, None).await
            } else if let Some(handle) = rest
                .strip_prefix("/account/sessions/")
                .and_then(|r| r.strip_suffix("/end"))
                .filter(|_| post)
            {
                account::end_sign_in(session, req, Some(handle)).await
            } else if let Some(id) = rest
                .strip_prefix("/account/oidc/")
                .and_then(|r| r.strip_suffix("/unbind"))
                .filter(|_| post)
            {
                account::unbind(session, req, id).await
            } else {
                Reply::error(req.lang, ErrorKind::NotFound, None)
            }
        }
    }
}

/// The stage of the browser's session, when it has one.
async fn stage_of(req: &Request<'_>) -> Option<Result<Stage, Reply>> {
    let id = req.cookies.session.value()?;
    match req.state.sessions.load(id, clock::now_secs()).await {
        Ok(Some(s)) if req.state.watch.allows(&s.account_id, s.created_at) => Some(Ok(s.stage)),
        Ok(Some(_)) => None,
        Ok(None) => None,
        Err(_) => Some(Err(unavailable(req.lang))),
    }
}

/// The browser's live session, or the reply for "none" (`missing`) or "store down".
pub async fn session_of(req: &Request<'_>, missing: Reply) -> Result<(String, SessionData), Reply> {
    let Some(id) = req.cookies.session.value() else {
        return Err(missing);
    };
    match req.state.sessions.load(id, clock::now_secs()).await {
        Ok(Some(s)) if req.state.watch.allows(&s.account_id, s.created_at) => {
            Ok((id.to_string(), s))
        }
        Ok(_) => Err(missing),
        Err(_) => Err(unavailable(req.lang)),
    }
}

/// True when the form's `csrf` field matches the session's token.
pub fn csrf_matches(form: &Form, session: &SessionData) -> bool {
    let sent = form.get("csrf").unwrap_or("");
    bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes()))
}

/// Writes one activity record. Returns false when the database did not take it (callers on a
/// success path then fail closed: every login must be on record).
pub async fn activity(
    req: &Request<'_>,
    account: Option<&Account>,
    login_name: &str,
    event: &str,
    method: &str,
    outcome: &str,
    detail: &str,
) -> bool {
    let who = account.map(|a| (a.id.as_str(), a.login_name.as_str()));
    record_activity(req, who, login_name, event, method, outcome, detail).await
}

/// [`activity`] for the account a session belongs to.
pub async fn session_activity(
    req: &Request<'_>,
    s: &SessionData,
    event: &str,
    outcome: &str,
    detail: &str,
) -> bool {
    let who = Some((s.account_id.as_str(), s.login_name.as_str()));
    record_activity(
        req,
        who,
        &s.login_name,
        event,
        &s.auth_method,
        outcome,
        detail,
    )
    .await
}

async fn record_activity(
    req: &Request<'_>,
    account: Option<(&str, &str)>,
    login_name: &str,
    event: &str,
    method: &str,
    outcome: &str,
    detail: &str,
) -> bool {
    let record = Activity {
        account_id: account.map(|(id, _)| id.to_string()),
        login_name: account
            .map(|(_, name)| name.to_string())
            .unwrap_or_else(|| login_name.to_string()),
        event: event.to_string(),
        method: method.to_string(),
        outcome: outcome.to_string(),
        client_ip: req.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: req.user_agent.to_string(),
        detail: detail.to_string(),
        at: clock::now_secs() as i64,
    };
    let result = match req.state.accounts().await {
        Ok(store) => store.record_activity(&record).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            tracing::error!("activity log write failed: {e:#}");
            false
        }
    }
}

/// Reads a form body, or the page that says why it could not be read.
pub async fn read_form(session: &mut Session, lang: Lang) -> Result<Form, Reply> {
    forms::read(session).await.map_err(|e| match e {
        FormError::TooLarge => Reply::error(lang, ErrorKind::PayloadTooLarge, None),
        FormError::NotAForm => Reply::error(
            lang,
            ErrorKind::BadRequest,
            Some("expected an application/x-www-form-urlencoded form"),
        ),
        FormError::Garbled => Reply::error(
            lang,
            ErrorKind::BadRequest,
            Some("the form could not be decoded"),
        ),
        FormError::Unreadable => Reply::error(
            lang,
            ErrorKind::BadRequest,
            Some("the form could not be read"),
        ),
    })
}

/// The page for an unreachable store or database: nobody gets in.
pub fn unavailable(lang: Lang) -> Reply {
    Reply::error(lang, ErrorKind::Unavailable, None).with_header("Retry-After", "30".into())
}

/// How long an overloaded gateway asks a client to wait: a moment, since a password check
/// takes ~20 ms and the queue is short.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// The page for a login refused because every password-checking place is taken: "busy, try
/// again in a moment". Nothing was counted against the account.
pub fn busy(lang: Lang) -> Reply {
    Reply::error(lang, ErrorKind::Busy, None)
        .with_header("Retry-After", BUSY_RETRY_AFTER_SECS.to_string())
}

/// Percent-encodes a local path for use inside a query string (`?rd=`).
pub fn encode_query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
