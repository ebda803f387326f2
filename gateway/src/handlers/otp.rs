//! `GET/POST /.menshen/otp`: the second step after the password for accounts with OTP bound.
//!
//! RFC 6238 codes with ±1 step of skew; every code is accepted at most once (the database
//! records the last accepted step with a conditional update, so two concurrent submits of one
//! code, even to two gateway instances, give exactly one success). Three wrong codes suspend
//! the account. The session gets a new id only once the code is right.

use menshen_otp::totp::{self, Secret};
use menshen_pages::{OtpMessage, OtpPage};
use pingora::proxy::Session;

use super::{Request, activity, csrf_matches, session_of};
use crate::accounts::Account;
use crate::clock;
use crate::cookies;
use crate::metrics::LOGINS;
use crate::regulation::{Attempt, Counted, FailureOutcome, taipei_clock};
use crate::respond::Reply;
use crate::sessions::{Factor, SessionData, Stage};

fn render(req: &Request<'_>, status: u16, s: &SessionData, message: Option<OtpMessage>) -> Reply {
    let html = menshen_pages::render_otp(&OtpPage {
        lang: req.lang,
        csrf: &s.csrf,
        display_name: &s.display_name,
        message,
        lockout: super::lockout_rule(req.state.config.lockout.otp_failures, req),
    });
    Reply::html(status, html)
}

pub async fn get(req: &Request<'_>) -> Reply {
    let (_, s) = match session_of(req, Reply::redirect(302, "/.menshen/login")).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    match s.stage {
        Stage::NeedsSecondFactor => render(req, 200, &s, None),
        Stage::MustBind => Reply::redirect(302, "/.menshen/bind"),
        Stage::Authenticated => Reply::redirect(
            302,
            &crate::sso::landing(s.return_to.as_deref().unwrap_or("/")),
        ),
    }
}

/// Opens the account's sealed TOTP secret.
fn open_secret(req: &Request<'_>, account_id: &str, sealed: &str) -> Option<Secret> {
    let bytes = req.state.keyring.open(sealed, account_id.as_bytes()).ok()?;
    Secret::from_bytes(&bytes)
}

pub async fn post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let (id, s) = match session_of(req, Reply::redirect(303, "/.menshen/login?exp=1")).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if s.stage != Stage::NeedsSecondFactor {
        return Reply::redirect(303, "/.menshen/login");
    }
    if !csrf_matches(&form, &s) {
        return render(req, 403, &s, Some(OtpMessage::Expired));
    }
    match req.state.regulation.admit(req.client_ip).await {
        Ok(true) => {}
        Ok(false) => {
            LOGINS.with_label_values(&["otp", "throttled"]).inc();
            return Reply::error(req.lang, menshen_pages::ErrorKind::TooManyRequests, None);
        }
        Err(_) => return super::unavailable(req.lang),
    }
    let store = match req.state.accounts().await {
        Ok(store) => store,
        Err(_) => return super::unavailable(req.lang),
    };
    let (account, binding) = match (
        store.find_by_id(&s.account_id).await,
        store.otp_binding(&s.account_id).await,
    ) {
        (Ok(Some(a)), Ok(Some(b))) if a.enabled => (a, b),
        (Ok(_), Ok(_)) => {
            // Disabled, deleted or unbound meanwhile: this login cannot finish.
            let _ = req.state.sessions.destroy(&id).await;
            return Reply::redirect(303, "/.menshen/login")
                .with_cookie(cookies::clear(req.names.session, req.names));
        }
        _ => return super::unavailable(req.lang),
    };
    let now = clock::now_secs();
    let unlocked_at = account.unlocked_at.max(0) as u64;
    let attempt = match req
        .state
        .regulation
        .reserve(Counted::Otp, &account.login_name, unlocked_at, now)
        .await
    {
        Ok(Attempt::Allowed(n)) => n,
        Ok(Attempt::Suspended { until }) => {
            LOGINS.with_label_values(&["otp", "locked"]).inc();
            activity(
                req,
                Some(&account),
                &account.login_name,
                "login",
                "otp",
                "locked",
                "",
            )
            .await;
            let message = OtpMessage::Locked {
                until: taipei_clock(until),
            };
            return render(req, 403, &s, Some(message));
        }
        Err(_) => return super::unavailable(req.lang),
    };
    let Some(secret) = open_secret(req, &account.id, &binding.0) else {
        tracing::error!(user = %account.login_name, "the OTP secret cannot be opened with the configured keys");
        return super::unavailable(req.lang);
    };
    let code = form.get("code").unwrap_or("");
    let accepted = match totp::matching_step(&secret, code, now) {
        Some(step) => match store.consume_otp_step(&account.id, step as i64).await {
            Ok(fresh) => fresh,
            Err(_) => return super::unavailable(req.lang),
        },
        None => false,
    };
    if !accepted {
        return wrong_code(req, &account, &s, attempt, now).await;
    }
    if req
        .state
        .regulation
        .success(Counted::Otp, &account.login_name)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    let mut upgraded = s.clone();
    upgraded.stage = Stage::Authenticated;
    upgraded.factors.push(Factor::Otp);
    // password+otp, oidc:<id>+otp
    upgraded.auth_method = format!("{}+otp", s.auth_method);
    upgraded.created_at = now;
    upgraded.last_seen = now;
    upgraded.csrf = crate::random::token();
    let target = upgraded.return_to.take().unwrap_or_else(|| "/".to_string());
    let new_id = match req.state.sessions.create(&upgraded, now).await {
        Ok(new_id) => new_id,
        Err(_) => return super::unavailable(req.lang),
    };
    let _ = req.state.sessions.destroy(&id).await;
    if !activity(
        req,
        Some(&account),
        &account.login_name,
        "login",
        "otp",
        "success",
        "",
    )
    .await
    {
        let _ = req.state.sessions.destroy(&new_id).await;
        return super::unavailable(req.lang);
    }
    LOGINS.with_label_values(&["otp", "success"]).inc();
    Reply::redirect(303, &crate::sso::landing(&target)).with_cookie(cookies::set(
        req.names.session,
        &new_id,
        req.names,
        None,
    ))
}

async fn wrong_code(
    req: &Request<'_>,
    account: &Account,
    s: &SessionData,
    attempt: u32,
    now: u64,
) -> Reply {
    LOGINS.with_label_values(&["otp", "failure"]).inc();
    activity(
        req,
        Some(account),
        &account.login_name,
        "login",
        "otp",
        "failure",
        "",
    )
    .await;
    match req
        .state
        .regulation
        .failure(Counted::Otp, &account.login_name, attempt, now)
        .await
    {
        Ok(FailureOutcome::Counted(n)) => {
            let left = req.state.config.lockout.otp_failures.saturating_sub(n);
            render(req, 401, s, Some(OtpMessage::WrongCodeTriesLeft { left }))
        }
        Ok(FailureOutcome::Suspended { until }) => {
            activity(
                req,
                Some(account),
                &account.login_name,
                "lock",
                "otp",
                "locked",
                "",
            )
            .await;
            let until = taipei_clock(until);
            let notice = menshen_pages::NoticeMail::Suspended {
                until: &until,
                code: true,
            };
            super::notices::send(req, account, notice).await;
            render(req, 403, s, Some(OtpMessage::Locked { until }))
        }
        Err(_) => super::unavailable(req.lang),
    }
}
