//! `GET/POST /.menshen/login`: the password step.
//!
//! The form carries a CSRF token that must equal the CSRF cookie (double submit; over TLS the
//! cookie is `__Host-` so no other host can plant it). The `rd` return target is accepted only
//! as a local path. Unknown accounts, disabled accounts and wrong passwords take the same
//! argon2 time and get the same message. A success always creates a brand-new session id.

use menshen_pages::{LoginMessage, LoginPage};
use menshen_policies::redirect::safe_return_target;
use pingora::proxy::Session;
use subtle::ConstantTimeEq;

use super::Request;
use crate::cookies;
use crate::metrics::LOGINS;
use crate::passwords::HashError;
use crate::respond::Reply;
use crate::sessions::{Factor, SessionData, Stage};
use crate::{clock, random};

/// The return target to use: the validated `rd`, or the site's root.
fn return_target(rd: Option<&str>) -> &str {
    rd.and_then(safe_return_target).unwrap_or("/")
}

/// Renders the form; `csrf` is the token to put in it (set as a cookie when new).
fn page(
    req: &Request<'_>,
    status: u16,
    rd: &str,
    username: &str,
    message: Option<LoginMessage>,
) -> Reply {
    let (csrf, fresh) = match req.cookies.csrf.value() {
        Some(t) => (t.to_string(), false),
        None => (random::token(), true),
    };
    let html = menshen_pages::render_login(&LoginPage {
        lang: req.lang,
        site_name: &req.site.config.name,
        csrf: &csrf,
        rd,
        username,
        message,
        notice: req.state.config.login.notice.as_deref(),
        support: req.state.config.login.support.as_deref(),
        other_methods: &[],
    });
    let mut reply = Reply::html(status, html);
    if fresh {
        reply = reply.with_cookie(cookies::set(req.names.csrf, &csrf, req.names, None));
    }
    if let Some(lang) = req.query.get("lang")
        && menshen_pages::Lang::from_code(lang).is_some()
    {
        reply = reply.with_cookie(format!(
            "{}={}; Path=/; SameSite=Lax; Max-Age=31536000{}",
            cookies::LANG_COOKIE,
            req.lang.code(),
            if req.names.secure { "; Secure" } else { "" }
        ));
    }
    reply
}

pub fn get(req: &Request<'_>) -> Reply {
    let rd = return_target(req.query.get("rd"));
    let message = if req.query.get("lo").is_some() {
        Some(LoginMessage::LoggedOut)
    } else if req.query.get("exp").is_some() {
        Some(LoginMessage::SessionExpired)
    } else {
        None
    };
    page(req, 200, rd, "", message)
}

pub async fn post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let rd = return_target(form.get("rd"));
    let username = form.get("username").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");

    let sent_csrf = form.get("csrf").unwrap_or("");
    let csrf_ok = req
        .cookies
        .csrf
        .value()
        .is_some_and(|c| bool::from(c.as_bytes().ct_eq(sent_csrf.as_bytes())));
    if !csrf_ok {
        LOGINS.with_label_values(&["password", "csrf"]).inc();
        return page(req, 403, rd, username, Some(LoginMessage::FormExpired));
    }
    if username.is_empty()
        || password.is_empty()
        || username.chars().count() > 128
        || password.len() > 1024
    {
        return page(req, 400, rd, username, Some(LoginMessage::MissingFields));
    }

    let accounts = match req.state.accounts().await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("account database unavailable: {e:#}");
            return super::unavailable(req.lang);
        }
    };
    let account = match accounts.find_by_login(username).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("account lookup failed: {e:#}");
            return super::unavailable(req.lang);
        }
    };
    // Disabled accounts are checked like any other, so their answer takes the same time.
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let verified = match req.state.passwords.verify(password, hash).await {
        Ok(v) => v,
        Err(HashError::Busy) | Err(HashError::Internal(_)) => {
            return super::unavailable(req.lang);
        }
    };
    let account = match account {
        Some(a) if verified && a.enabled => a,
        _ => {
            LOGINS.with_label_values(&["password", "failure"]).inc();
            tracing::info!(user = %username, ip = ?req.client_ip, "password login failed");
            return page(
                req,
                401,
                rd,
                username,
                Some(LoginMessage::InvalidCredentials),
            );
        }
    };

    let now = clock::now_secs();
    let data = SessionData {
        account_id: account.id.clone(),
        login_name: account.login_name.clone(),
        display_name: account.display_name.clone(),
        school_code: account.school_code.clone(),
        roles: account.roles.clone(),
        factors: vec![Factor::Password],
        stage: Stage::Authenticated,
        auth_method: "password".to_string(),
        csrf: random::token(),
        created_at: now,
        last_seen: now,
    };
    let id = match req.state.sessions.create(&data, now).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("{e}");
            return super::unavailable(req.lang);
        }
    };
    // The browser's previous session, if any, ends here: it is never upgraded in place.
    if let Some(old) = req.cookies.session.value() {
        let _ = req.state.sessions.destroy(old).await;
    }
    LOGINS.with_label_values(&["password", "success"]).inc();
    tracing::info!(user = %account.login_name, ip = ?req.client_ip, "password login succeeded");
    Reply::redirect(303, rd).with_cookie(cookies::set(req.names.session, &id, req.names, None))
}
