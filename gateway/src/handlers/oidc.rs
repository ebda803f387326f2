//! `GET /.menshen/oidc/{provider}/start` (login), `POST …/start` (binding, from the account
//! page with the CSRF token and the owner's proof) and `/callback`: logging in with, or
//! binding, an OpenID Connect account (Google, the education cloud, ...).
//!
//! `state`, `nonce` and the PKCE verifier are kept server-side (volatile store), bound to the
//! browser (a cookie of their own for a login; the session for a binding), short-lived and
//! single-use. A login with an external account that was never bound fails with the manual's
//! message; a bound one continues to the OTP step (its lockout applies) and reaches the app
//! as `oidc:<id>+otp` (a provider configured with `require_otp = false` reaches it as
//! `oidc:<id>`). Binding needs a fully authenticated session of an account that
//! already has OTP or a certificate; one external account binds to one Menshen account.

use std::time::Duration;

use menshen_pages::{OidcError, OidcErrorPage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Request, activity, session_of};
use crate::accounts::{Account, OidcBindOutcome};
use crate::clock;
use crate::cookies;
use crate::metrics::LOGINS;
use crate::oidc::{OidcFailure, Provider};
use crate::respond::Reply;
use crate::sessions::{Factor, SessionData, Stage, store_key};

const FLOW_LIFETIME: Duration = Duration::from_secs(600);

/// The browser-binding cookie of a login that is at the provider.
fn flow_cookie(names: cookies::CookieNames) -> &'static str {
    names.oidc
}

#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    purpose: Purpose,
    /// SHA-256 of the browser cookie (login) or of the session id (bind).
    browser: String,
    nonce: String,
    pkce_verifier: String,
    redirect_uri: String,
    return_to: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    Login,
    Bind,
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn error_page(req: &Request<'_>, provider: &Provider, kind: OidcError) -> Reply {
    let html = menshen_pages::render_oidc_error(&OidcErrorPage {
        lang: req.lang,
        provider_label: &provider.config.display_name,
        kind,
    });
    Reply::html(kind.status(), html)
}

fn provider<'r>(req: &'r Request<'_>, id: &str) -> Option<&'r Provider> {
    req.state
        .providers
        .iter()
        .find(|p| p.config.id == id)
        .map(|p| p.as_ref())
}

/// `{scheme}://{host}/.menshen/oidc/{id}/callback` for this request's host: what the
/// operator registers at the provider.
fn redirect_uri(req: &Request<'_>, id: &str) -> String {
    let scheme = if req.names.secure { "https" } else { "http" };
    format!("{scheme}://{}/.menshen/oidc/{id}/callback", req.host)
}

/// `GET /.menshen/oidc/{id}/start`: signing in with the provider. Binding is not started by a
/// GET (it changes the account): the account page posts to [`start_bind`].
pub async fn start(req: &Request<'_>, id: &str) -> Reply {
    let Some(p) = provider(req, id) else {
        return Reply::error(req.lang, menshen_pages::ErrorKind::NotFound, None);
    };
    if req.query.get("purpose") == Some("bind") {
        return Reply::error(
            req.lang,
            menshen_pages::ErrorKind::MethodNotAllowed,
            Some("linking an account starts from the login settings page's form"),
        )
        .with_header("Allow", "POST".to_string());
    }
    // An anonymous request that stores a flow for minutes: within the address's budget.
    if let Err(reply) = super::login::anonymous_write_allowed(req).await {
        return reply;
    }
    let token = crate::random::token();
    let cookie = cookies::set(
        flow_cookie(req.names),
        &token,
        req.names,
        Some(FLOW_LIFETIME.as_secs()),
    );
    let rd = super::login::return_target(req, req.query.get("rd"));
    begin(req, p, Purpose::Login, hash(&token), rd)
        .await
        .with_cookie(cookie)
}

/// `POST /.menshen/oidc/{id}/start` (fields `purpose=bind`, `csrf`, and the owner's proof,
/// `current_password` or `current_code`): linking a provider account to the signed-in one.
/// The session's CSRF token keeps another site from starting a link in this browser (which
/// would bind the other site's provider account here); the proof keeps a stolen session from
/// linking an account that would then sign in as this one.
pub async fn start_bind(
    session: &mut pingora::proxy::Session,
    req: &Request<'_>,
    id: &str,
) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let Some(p) = provider(req, id) else {
        return Reply::error(req.lang, menshen_pages::ErrorKind::NotFound, None);
    };
    let (sid, s) = match session_of(req, Reply::redirect(303, "/.menshen/login")).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if s.stage != Stage::Authenticated {
        return Reply::redirect(303, "/.menshen/login");
    }
    if !super::csrf_matches(&form, &s) || form.get("purpose") != Some("bind") {
        return Reply::error(
            req.lang,
            menshen_pages::ErrorKind::Forbidden,
            Some("the form has expired; please reload the page and try again"),
        );
    }
    // As for OTP and the card: a session left open (or stolen) cannot link another
    // account that would then sign in as this one.
    if !super::bind::recent_login(&s) {
        return Reply::error(
            req.lang,
            menshen_pages::ErrorKind::Forbidden,
            Some(super::bind::RELOGIN_TO_CHANGE),
        );
    }
    let account = match load_account(req, &s.account_id).await {
        Ok(a) if a.second_factor_bound() => a,
        Ok(_) => return Reply::redirect(303, "/.menshen/account?tab=settings&msg=needs2fa"),
        Err(reply) => return reply,
    };
    let what = format!("oidc:{id}");
    if let Some(refusal) = super::account::reauth_refusal(req, &s, &account, &form, &what).await {
        return refusal;
    }
    let reply = begin(req, p, Purpose::Bind, store_key(&sid), "/".to_string()).await;
    if reply.status == 302 {
        // A form's POST answered with 303 so the browser follows with a GET.
        Reply {
            status: 303,
            ..reply
        }
    } else {
        reply
    }
}

/// Asks the provider for an authorization URL and keeps the flow server-side.
async fn begin(
    req: &Request<'_>,
    p: &Provider,
    purpose: Purpose,
    browser: String,
    return_to: String,
) -> Reply {
    let id = p.config.id.as_str();
    let redirect = redirect_uri(req, id);
    let auth = match p.authorize(&req.state.http, &redirect).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(provider = %id, "{e}");
            return error_page(req, p, OidcError::ProviderDown);
        }
    };
    let flow = Flow {
        provider: id.to_string(),
        purpose,
        browser,
        nonce: auth.nonce,
        pkce_verifier: auth.pkce_verifier,
        redirect_uri: redirect,
        return_to,
    };
    let Ok(json) = serde_json::to_vec(&flow) else {
        return super::unavailable(req.lang);
    };
    if req
        .state
        .volatile
        .put(&format!("oidc:{}", hash(&auth.state)), &json, FLOW_LIFETIME)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    Reply::redirect(302, &auth.url)
}

async fn load_account(req: &Request<'_>, account_id: &str) -> Result<Account, Reply> {
    match req.state.accounts().await {
        Ok(store) => match store.find_by_id(account_id).await {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(Reply::redirect(302, "/.menshen/login")),
            Err(_) => Err(super::unavailable(req.lang)),
        },
        Err(_) => Err(super::unavailable(req.lang)),
    }
}

pub async fn callback(req: &Request<'_>, id: &str) -> Reply {
    let Some(p) = provider(req, id) else {
        return Reply::error(req.lang, menshen_pages::ErrorKind::NotFound, None);
    };
    let method = format!("oidc:{id}");
    let state = req.query.get("state").unwrap_or("");
    if state.is_empty() || state.len() > 512 {
        return error_page(req, p, OidcError::StateInvalid);
    }
    // Single use: whatever happens next, this state is gone.
    let flow: Option<Flow> = match req
        .state
        .volatile
        .take(&format!("oidc:{}", hash(state)))
        .await
    {
        Ok(raw) => raw.and_then(|b| serde_json::from_slice(&b).ok()),
        Err(_) => return super::unavailable(req.lang),
    };
    let Some(flow) = flow.filter(|f| f.provider == id) else {
        LOGINS.with_label_values(&[&method, "bad_state"]).inc();
        return error_page(req, p, OidcError::StateInvalid);
    };
    let clear = cookies::clear(flow_cookie(req.names), req.names);
    let browser_ok = match flow.purpose {
        Purpose::Login => req
            .cookies
            .oidc
            .value()
            .is_some_and(|c| hash(c) == flow.browser),
        Purpose::Bind => req
            .cookies
            .session
            .value()
            .is_some_and(|s| store_key(s) == flow.browser),
    };
    if !browser_ok {
        LOGINS.with_label_values(&[&method, "bad_state"]).inc();
        return error_page(req, p, OidcError::StateInvalid).with_cookie(clear);
    }
    if let Some(error) = req.query.get("error") {
        let kind = if error == "access_denied" {
            OidcError::Denied
        } else {
            OidcError::TokenInvalid
        };
        activity(req, None, "", "login", &method, "denied", "").await;
        return error_page(req, p, kind).with_cookie(clear);
    }
    let code = req.query.get("code").unwrap_or("");
    let identity = match p
        .finish(
            &req.state.http,
            &flow.redirect_uri,
            code,
            &flow.pkce_verifier,
            &flow.nonce,
        )
        .await
    {
        Ok(i) => i,
        Err(OidcFailure::ProviderDown(e)) => {
            tracing::warn!(provider = %id, "{e}");
            return error_page(req, p, OidcError::ProviderDown).with_cookie(clear);
        }
        Err(OidcFailure::TokenInvalid(e)) => {
            tracing::warn!(provider = %id, "{e}");
            LOGINS.with_label_values(&[&method, "token_invalid"]).inc();
            activity(req, None, "", "login", &method, "token_invalid", "").await;
            return error_page(req, p, OidcError::TokenInvalid).with_cookie(clear);
        }
    };
    let reply = match flow.purpose {
        Purpose::Login => login(req, p, &identity, &flow).await,
        Purpose::Bind => bind(req, p, &identity).await,
    };
    reply.with_cookie(clear)
}

async fn login(
    req: &Request<'_>,
    p: &Provider,
    identity: &crate::oidc::ExternalIdentity,
    flow: &Flow,
) -> Reply {
    let method = format!("oidc:{}", p.config.id);
    let store = match req.state.accounts().await {
        Ok(s) => s,
        Err(_) => return super::unavailable(req.lang),
    };
    let account_id = match store
        .oidc_account(&identity.issuer, &identity.subject)
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => {
            LOGINS.with_label_values(&[&method, "not_bound"]).inc();
            activity(
                req,
                None,
                &identity.shown,
                "login",
                &method,
                "not_bound",
                "",
            )
            .await;
            return error_page(req, p, OidcError::NotBound);
        }
        Err(_) => return super::unavailable(req.lang),
    };
    let account = match load_account(req, &account_id).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    if !account.enabled {
        activity(req, Some(&account), "", "login", &method, "disabled", "").await;
        return error_page(req, p, OidcError::AccountDisabled);
    }
    let stage = if p.config.require_otp {
        if !account.otp_bound {
            activity(req, Some(&account), "", "login", &method, "no_otp", "").await;
            return error_page(req, p, OidcError::NoOtp);
        }
        Stage::NeedsSecondFactor
    } else if account.second_factor_bound() {
        // A provider trusted alone still needs an account that has a second factor bound
        // (the manual's rule for binding providers at all).
        Stage::Authenticated
    } else {
        activity(
            req,
            Some(&account),
            "",
            "login",
            &method,
            "no_second_factor",
            "",
        )
        .await;
        return error_page(req, p, OidcError::NoOtp);
    };
    let now = clock::now_secs();
    // A suspension after wrong passwords or codes holds for every method: a provider trusted
    // alone (`require_otp = false`) would otherwise sign a suspended account straight in.
    match req
        .state
        .regulation
        .suspended_until(&account.login_name, account.unlocked_at.max(0) as u64, now)
        .await
    {
        Ok(None) => {}
        Ok(Some(_)) => {
            LOGINS.with_label_values(&[&method, "locked"]).inc();
            activity(req, Some(&account), "", "login", &method, "locked", "").await;
            return error_page(req, p, OidcError::Locked);
        }
        Err(_) => return super::unavailable(req.lang),
    }
    let data = SessionData {
        account_id: account.id.clone(),
        login_name: account.login_name.clone(),
        display_name: account.display_name.clone(),
        school_code: account.school_code.clone(),
        roles: account.roles.clone(),
        factors: vec![Factor::Oidc],
        stage,
        auth_method: method.clone(),
        csrf: crate::random::token(),
        created_at: now,
        last_seen: now,
        return_to: Some(flow.return_to.clone()),
        portal: None,
        site: None,
        client_ip: req.client_ip_text(),
        device: req.device(),
    };
    let sid = match req.state.sessions.create(&data, now).await {
        Ok(sid) => sid,
        Err(_) => return super::unavailable(req.lang),
    };
    if let Some(old) = req.cookies.session.value() {
        let _ = req.state.sessions.destroy(old).await;
    }
    if !activity(
        req,
        Some(&account),
        "",
        "login",
        &method,
        "success",
        &identity.shown,
    )
    .await
    {
        let _ = req.state.sessions.destroy(&sid).await;
        return super::unavailable(req.lang);
    }
    LOGINS.with_label_values(&[&method, "success"]).inc();
    let next = if stage == Stage::NeedsSecondFactor {
        "/.menshen/otp".to_string()
    } else {
        crate::sso::landing(&flow.return_to)
    };
    // The login form's double-submit token from before the login is replaced too: whoever
    // could read or plant it (another tab, a sibling host before `__Host-`) gets nothing
    // that works with the new session.
    Reply::redirect(302, &next)
        .with_cookie(cookies::set(req.names.session, &sid, req.names, None))
        .with_cookie(cookies::set(
            req.names.csrf,
            &crate::random::token(),
            req.names,
            None,
        ))
}

async fn bind(req: &Request<'_>, p: &Provider, identity: &crate::oidc::ExternalIdentity) -> Reply {
    let method = format!("oidc:{}", p.config.id);
    let (sid, s) = match session_of(req, Reply::redirect(302, "/.menshen/login")).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if s.stage != Stage::Authenticated {
        return Reply::redirect(302, "/.menshen/login");
    }
    let account = match load_account(req, &s.account_id).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    if !account.second_factor_bound() {
        return Reply::redirect(302, "/.menshen/account?tab=settings&msg=needs2fa");
    }
    let store = match req.state.accounts().await {
        Ok(s) => s,
        Err(_) => return super::unavailable(req.lang),
    };
    let now = clock::now_secs();
    match store
        .bind_oidc(
            &account.id,
            &p.config.id,
            &identity.issuer,
            &identity.subject,
            &identity.shown,
            now as i64,
        )
        .await
    {
        Ok(OidcBindOutcome::Bound) => {}
        Ok(OidcBindOutcome::Conflict) => {
            activity(req, Some(&account), "", "bind", &method, "conflict", "").await;
            return Reply::redirect(
                302,
                &format!(
                    "/.menshen/account?tab=settings&msg=conflict&p={}",
                    p.config.id
                ),
            );
        }
        Err(_) => return super::unavailable(req.lang),
    }
    activity(
        req,
        Some(&account),
        "",
        "bind",
        &method,
        "success",
        &identity.shown,
    )
    .await;
    match keep_only_this_session(req, &sid, &s).await {
        Ok(cookie) => Reply::redirect(
            302,
            &format!("/.menshen/account?tab=settings&msg=bound&p={}", p.config.id),
        )
        .with_cookie(cookie),
        Err(reply) => reply,
    }
}

/// Ends every session of the account, then gives this browser a fresh one: a binding change
/// ends the account's other sessions.
pub async fn keep_only_this_session(
    req: &Request<'_>,
    sid: &str,
    s: &SessionData,
) -> Result<String, Reply> {
    if req
        .state
        .sessions
        .destroy_account(&s.account_id)
        .await
        .is_err()
    {
        return Err(super::unavailable(req.lang));
    }
    let _ = sid;
    let now = clock::now_secs();
    let mut fresh = s.clone();
    fresh.last_seen = now;
    // A new session id gets a new CSRF token: forms (and tokens) of the session before the
    // binding change do not carry over.
    fresh.csrf = crate::random::token();
    match req.state.sessions.create(&fresh, now).await {
        Ok(new_id) => Ok(cookies::set(req.names.session, &new_id, req.names, None)),
        Err(_) => Err(super::unavailable(req.lang)),
    }
}
