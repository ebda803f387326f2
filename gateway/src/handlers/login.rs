//! `GET/POST /.menshen/login`: the password step.
//!
//! Order of checks on a POST, each cheaper than the next: the CSRF token (double submit; over
//! TLS the cookie is `__Host-` so no other host can plant it), the per-address throttle, the
//! captcha (a wrong one costs no argon2 work and is not a password failure), a place in the
//! password-checking pool (when there is none the answer is "busy, try again in a moment",
//! taken before anything is counted, so it is never a password failure), the account's
//! suspension, and only then the password. Unknown, disabled and existing accounts take the
//! same argon2 time and get the same message, and count failures alike. A correct password
//! leads where `menshen_policies::factors::after_password` says, always with a new session id.

use menshen_pages::{CaptchaField, LoginMessage, LoginPage};
use menshen_policies::factors::{AfterPassword, after_password};
use menshen_policies::redirect::safe_return_target;
use pingora::proxy::Session;
use subtle::ConstantTimeEq;

use super::{Request, activity};
use crate::accounts::Account;
use crate::cookies;
use crate::metrics::LOGINS;
use crate::passwords::HashError;
use crate::regulation::{Attempt, Counted, FailureOutcome, taipei_clock};
use crate::respond::Reply;
use crate::sessions::{Factor, SessionData, Stage};
use crate::{clock, random};
use menshen_config::CaptchaMode;

/// The return target to use: the validated `rd`, or the site's root. On the single sign-on
/// portal it may be an absolute URL to a configured site ([`crate::sso::Portal::return_target`]);
/// everywhere else only a local path.
pub fn return_target(req: &Request<'_>, rd: Option<&str>) -> String {
    let Some(rd) = rd else {
        return "/".to_string();
    };
    match (&req.state.portal, req.site.portal) {
        (Some(portal), true) => portal
            .return_target(&req.state.router, req.tls, &req.host, rd)
            .map(|t| t.to_url()),
        _ => safe_return_target(rd).map(str::to_string),
    }
    .unwrap_or_else(|| "/".to_string())
}

/// Whether this client must solve a captcha now (the login and forgot-password forms).
pub async fn captcha_needed(req: &Request<'_>) -> Result<bool, Reply> {
    match req.state.config.captcha {
        CaptchaMode::Always => Ok(true),
        CaptchaMode::Off => Ok(false),
        CaptchaMode::AfterFailure => req
            .state
            .regulation
            .address_has_failed(req.client_ip)
            .await
            .map_err(|_| super::unavailable(req.lang)),
    }
}

/// The per-address budget of anonymous writes to the shared store (here: a new captcha), or
/// the "too many requests" page.
pub async fn anonymous_write_allowed(req: &Request<'_>) -> Result<(), Reply> {
    match req
        .state
        .regulation
        .admit_anonymous_write(req.client_ip)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => {
            LOGINS.with_label_values(&["page", "throttled"]).inc();
            Err(
                Reply::error(req.lang, menshen_pages::ErrorKind::TooManyRequests, None)
                    .with_header("Retry-After", "60".into()),
            )
        }
        Err(_) => Err(super::unavailable(req.lang)),
    }
}

/// The anonymous forms' CSRF token (double submit): the browser's cookie value, or a new one
/// to set (`true`) when it has none.
pub fn form_token(req: &Request<'_>) -> (String, bool) {
    match req.cookies.csrf.value() {
        Some(t) => (t.to_string(), false),
        None => (random::token(), true),
    }
}

/// Whether an anonymous form's `csrf` field matches the browser's cookie.
pub fn form_token_matches(req: &Request<'_>, form: &crate::forms::Form) -> bool {
    let sent = form.get("csrf").unwrap_or("");
    req.cookies
        .csrf
        .value()
        .is_some_and(|c| bool::from(c.as_bytes().ct_eq(sent.as_bytes())))
}

/// A new captcha for an anonymous form, within the address's budget of store writes:
/// `(id, picture URL)`.
pub async fn new_captcha(req: &Request<'_>) -> Result<(String, String), Reply> {
    anonymous_write_allowed(req).await?;
    match req.state.captchas.issue().await {
        Ok(id) => {
            let src = format!("/.menshen/captcha/{id}.png");
            Ok((id, src))
        }
        Err(_) => Err(super::unavailable(req.lang)),
    }
}

/// Renders the form (with a fresh captcha when one is needed).
async fn page(
    req: &Request<'_>,
    status: u16,
    rd: &str,
    username: &str,
    message: Option<LoginMessage>,
) -> Reply {
    let (csrf, fresh) = form_token(req);
    let captcha_id = match captcha_needed(req).await {
        Ok(true) => match anonymous_write_allowed(req).await {
            Ok(()) => match req.state.captchas.issue().await {
                Ok(id) => Some(id),
                Err(_) => return super::unavailable(req.lang),
            },
            Err(reply) => return reply,
        },
        Ok(false) => None,
        Err(reply) => return reply,
    };
    let image = captcha_id
        .as_ref()
        .map(|id| format!("/.menshen/captcha/{id}.png"));
    // 更換圖片 keeps the account name (captcha.js puts in what is typed at the moment).
    let refresh = match username {
        "" => format!("/.menshen/login?rd={}", super::encode_query_value(rd)),
        name => format!(
            "/.menshen/login?rd={}&u={}",
            super::encode_query_value(rd),
            super::encode_query_value(name)
        ),
    };
    let hrefs: Vec<String> = req
        .state
        .providers
        .iter()
        .map(|p| {
            format!(
                "/.menshen/oidc/{}/start?rd={}",
                p.config.id,
                super::encode_query_value(rd)
            )
        })
        .collect();
    let certificate_href = format!("/.menshen/certificate?rd={}", super::encode_query_value(rd));
    let certificate_method = req
        .state
        .certificates
        .as_ref()
        .map(|_| menshen_pages::OtherMethod {
            label: req.lang.certificate_texts().login_button,
            href: &certificate_href,
        });
    let mobile_href = format!("/.menshen/mobile?rd={}", super::encode_query_value(rd));
    let mobile_method = req
        .state
        .mobile
        .as_ref()
        .filter(|_| req.state.certificates.is_some())
        .map(|_| menshen_pages::OtherMethod {
            label: req.lang.mobile_texts().login_button,
            href: &mobile_href,
        });
    // The manual's order: 自然人憑證登入 first, then 行動自然人憑證APP登入 (the slides), then
    // the external accounts.
    let other_methods: Vec<menshen_pages::OtherMethod> =
        certificate_method
            .into_iter()
            .chain(mobile_method)
            .chain(req.state.providers.iter().zip(&hrefs).map(|(p, href)| {
                menshen_pages::OtherMethod {
                    label: &p.config.button_label,
                    href,
                }
            }))
            .collect();
    let html = menshen_pages::render_login(&LoginPage {
        lang: req.lang,
        site_name: req.site_name(),
        csrf: &csrf,
        rd,
        username,
        message,
        notice: req.state.config.login.notice.as_deref(),
        support: req.state.config.login.support.as_deref(),
        other_methods: &other_methods,
        lockout: super::lockout_rule(req.state.config.lockout.password_failures, req),
        forgot_password_href: if req.state.mailer.is_some() {
            "/.menshen/password/forgot"
        } else {
            "/.menshen/help#forgot-password"
        },
        captcha: match (&captcha_id, &image) {
            (Some(id), Some(src)) => Some(CaptchaField {
                id,
                image_src: src,
                refresh_href: &refresh,
            }),
            _ => None,
        },
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

pub async fn get(req: &Request<'_>) -> Reply {
    let rd = return_target(req, req.query.get("rd"));
    if req.site.portal
        && !rd.starts_with('/')
        && let Some(reply) = super::handoff::issue_if_signed_in(req, &rd).await
    {
        return reply;
    }
    let rd = rd.as_str();
    let message = if req.query.get("lo").is_some() {
        Some(super::logout::message(req))
    } else if req.query.get("bound").is_some() && req.query.get("via") == Some("otp") {
        Some(LoginMessage::OtpBound)
    } else if req.query.get("bound").is_some() {
        Some(LoginMessage::BoundLogInAgain)
    } else if req.query.get("exp").is_some() {
        Some(LoginMessage::SessionExpired)
    } else if req.query.get("reset").is_some() {
        Some(LoginMessage::PasswordReset)
    } else {
        None
    };
    // `u`: the account name kept across 更換圖片.
    let username = req
        .query
        .get("u")
        .map(str::trim)
        .filter(|u| u.chars().count() <= 128)
        .unwrap_or("");
    page(req, 200, rd, username, message).await
}

/// Serves `GET /.menshen/captcha/ID.png`.
pub async fn captcha_picture(req: &Request<'_>, name: &str) -> Reply {
    let Some(id) = name.strip_suffix(".png") else {
        return Reply::error(req.lang, menshen_pages::ErrorKind::NotFound, None);
    };
    match req.state.captchas.picture(id).await {
        Ok(Some(png)) => {
            let mut r = Reply::html(200, String::new());
            r.content_type = "image/png";
            r.body = png.into();
            r
        }
        Ok(None) => Reply::error(req.lang, menshen_pages::ErrorKind::NotFound, None),
        Err(_) => super::unavailable(req.lang),
    }
}

pub async fn post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let rd = return_target(req, form.get("rd"));
    let rd = rd.as_str();
    let username = form.get("username").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");

    if !form_token_matches(req, &form) {
        LOGINS.with_label_values(&["password", "csrf"]).inc();
        return page(req, 403, rd, username, Some(LoginMessage::FormExpired)).await;
    }
    match req.state.regulation.admit(req.client_ip).await {
        Ok(true) => {}
        Ok(false) => {
            LOGINS.with_label_values(&["password", "throttled"]).inc();
            // Counted in metrics only: an address over its limit must not be able to fill
            // anyone's activity log.
            return page(req, 429, rd, username, Some(LoginMessage::Throttled)).await;
        }
        Err(_) => return super::unavailable(req.lang),
    }
    match captcha_needed(req).await {
        Ok(true) => {
            let ok = req
                .state
                .captchas
                .check(
                    form.get("captcha_id").unwrap_or(""),
                    form.get("captcha").unwrap_or(""),
                )
                .await;
            match ok {
                Ok(true) => {}
                Ok(false) => {
                    LOGINS.with_label_values(&["password", "captcha"]).inc();
                    activity(req, None, username, "login", "captcha", "failure", "").await;
                    return page(req, 400, rd, username, Some(LoginMessage::CaptchaWrong)).await;
                }
                Err(_) => return super::unavailable(req.lang),
            }
        }
        Ok(false) => {}
        Err(reply) => return reply,
    }
    if username.is_empty()
        || password.is_empty()
        || username.chars().count() > 128
        || password.len() > 1024
    {
        return page(req, 400, rd, username, Some(LoginMessage::MissingFields)).await;
    }

    // Shed before the account lookup and the attempt's reservation: a login the pool cannot
    // take costs one atomic operation and counts against nobody.
    let slot = match req.state.passwords.admit() {
        Ok(slot) => slot,
        Err(_) => {
            LOGINS.with_label_values(&["password", "busy"]).inc();
            return super::busy(req.lang);
        }
    };
    let account = match req.state.accounts().await {
        Ok(store) => match store.find_by_login(username).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("account lookup failed: {e:#}");
                return super::unavailable(req.lang);
            }
        },
        Err(e) => {
            tracing::error!("account database unavailable: {e:#}");
            return super::unavailable(req.lang);
        }
    };
    let now = clock::now_secs();
    let unlocked_at = account
        .as_ref()
        .map(|a| a.unlocked_at.max(0) as u64)
        .unwrap_or(0);
    let attempt = match req
        .state
        .regulation
        .reserve(Counted::Password, username, unlocked_at, now)
        .await
    {
        Ok(Attempt::Allowed(n)) => n,
        Ok(Attempt::Suspended { until }) => {
            LOGINS.with_label_values(&["password", "locked"]).inc();
            activity(
                req,
                account.as_ref(),
                username,
                "login",
                "password",
                "locked",
                "",
            )
            .await;
            let until = taipei_clock(until);
            return page(req, 403, rd, username, Some(LoginMessage::Locked { until })).await;
        }
        Err(_) => return super::unavailable(req.lang),
    };

    // Disabled accounts are checked like any other, so their answer takes the same time.
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let verified = match slot.verify(password, hash).await {
        Ok(v) => v,
        Err(HashError::Busy) => return super::busy(req.lang),
        Err(HashError::Internal(e)) => {
            tracing::error!("{e}");
            return super::unavailable(req.lang);
        }
    };
    let account = match account {
        Some(a) if verified && a.enabled => a,
        other => return failed(req, other.as_ref(), rd, username, attempt, now).await,
    };
    if req
        .state
        .regulation
        .success(Counted::Password, username)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }

    let stage = match after_password(
        account.is_aa(),
        account.otp_bound,
        account.certificate_method_bound(),
    ) {
        AfterPassword::AskOtp => Stage::NeedsSecondFactor,
        AfterPassword::MustBind => Stage::MustBind,
        AfterPassword::UseCertificate => {
            LOGINS
                .with_label_values(&["password", "use_certificate"])
                .inc();
            activity(
                req,
                Some(&account),
                username,
                "login",
                "password",
                "use_certificate",
                "",
            )
            .await;
            return page(req, 403, rd, username, Some(LoginMessage::UseCertificate)).await;
        }
    };
    let data = SessionData {
        account_id: account.id.clone(),
        login_name: account.login_name.clone(),
        display_name: account.display_name.clone(),
        school_code: account.school_code.clone(),
        roles: account.roles.clone(),
        factors: vec![Factor::Password],
        stage,
        auth_method: "password".to_string(),
        csrf: random::token(),
        created_at: now,
        last_seen: now,
        return_to: Some(rd.to_string()),
        portal: None,
        site: None,
        client_ip: req.client_ip_text(),
        device: req.device(),
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
    let next = match stage {
        Stage::NeedsSecondFactor => "/.menshen/otp",
        _ => "/.menshen/bind",
    };
    if !activity(
        req,
        Some(&account),
        username,
        "login",
        "password",
        "success",
        "",
    )
    .await
    {
        return super::unavailable(req.lang);
    }
    tracing::info!(user = %account.login_name, ip = ?req.client_ip, "password accepted");
    Reply::redirect(303, next).with_cookie(cookies::set(req.names.session, &id, req.names, None))
}

/// A wrong password (or unknown or disabled account): counted, logged, same answer for all.
async fn failed(
    req: &Request<'_>,
    account: Option<&Account>,
    rd: &str,
    username: &str,
    attempt: u32,
    now: u64,
) -> Reply {
    LOGINS.with_label_values(&["password", "failure"]).inc();
    if req
        .state
        .regulation
        .note_address_failure(req.client_ip)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    tracing::info!(user = %username, ip = ?req.client_ip, "password login failed");
    activity(req, account, username, "login", "password", "failure", "").await;
    match req
        .state
        .regulation
        .failure(Counted::Password, username, attempt, now)
        .await
    {
        Ok(FailureOutcome::Counted(n)) => {
            let left = req.state.config.lockout.password_failures.saturating_sub(n);
            let message = LoginMessage::InvalidCredentialsTriesLeft { left };
            page(req, 401, rd, username, Some(message)).await
        }
        Ok(FailureOutcome::Suspended { until }) => {
            activity(req, account, username, "lock", "password", "locked", "").await;
            let until = taipei_clock(until);
            if let Some(a) = account {
                let notice = menshen_pages::NoticeMail::Suspended {
                    until: &until,
                    code: false,
                };
                super::notices::send(req, a, notice).await;
            }
            page(req, 403, rd, username, Some(LoginMessage::Locked { until })).await
        }
        Err(_) => super::unavailable(req.lang),
    }
}
