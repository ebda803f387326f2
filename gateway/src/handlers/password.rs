//! Password self-service: `GET /.menshen/help`, `GET/POST /.menshen/password/forgot`,
//! `GET/POST /.menshen/password/reset` (the mailed link) and `GET/POST
//! /.menshen/password/change` (修改密碼 from the profile).
//!
//! The forgot form gives one answer to every request that gets past the form checks, whether
//! or not the account exists, has an address, or has had its links for the hour; an unknown
//! name costs the same store and database work as a known one (a stand-in link is issued),
//! and mail leaves through a queue, so neither the words nor the time tell anyone which
//! accounts exist. What a link is worth is decided in [`crate::recovery`]; new passwords are
//! checked against the rules and hashed on the password pool, never on a proxy worker.

use menshen_pages::{
    ErrorKind, ForgotCaptcha, ForgotPage, HelpPage, MailContext, NoticePage, PasswordFormKind,
    PasswordFormPage, PasswordNotice, ReauthField,
};
use menshen_policies::password::{PasswordPolicy, check_password_in_context};
use pingora::proxy::Session;

use super::login::{captcha_needed, form_token, form_token_matches, new_captcha};
use super::reauth::{self, Proof};
use super::{Request, activity, csrf_matches, session_of};
use crate::accounts::Account;
use crate::metrics::LOGINS;
use crate::passwords::{HashError, hash_password_blocking};
use crate::recovery::{self, Limited};
use crate::respond::Reply;
use crate::sessions::Stage;
use crate::{clock, cookies};

/// The longest account name or address looked up (RFC 5321's address limit).
const MAX_LOGIN: usize = 254;
/// The longest new password read from a form, in bytes; the policy's own maximum (in
/// characters) is checked after this.
const MAX_PASSWORD_BYTES: usize = 4096;

/// The account every unknown name is served as: its link is issued and thrown away, so an
/// unknown name costs what a known one does. No account has this id (ids are UUIDs).
fn stand_in(policy_hash: &str) -> Account {
    Account {
        id: "-".into(),
        login_name: String::new(),
        display_name: String::new(),
        school_code: String::new(),
        roles: vec![],
        email: String::new(),
        password_hash: policy_hash.into(),
        enabled: false,
        created_at: 0,
        updated_at: 0,
        unlocked_at: 0,
        otp_bound: false,
        certificate_bound: false,
        mobile_bound: false,
        id_last4: String::new(),
    }
}

pub async fn help(req: &Request<'_>) -> Reply {
    let login = &req.state.config.login;
    Reply::html(
        200,
        menshen_pages::render_help(&HelpPage {
            lang: req.lang,
            site_name: req.site_name(),
            mail: req.state.mailer.is_some(),
            support: login.support.as_deref(),
            help: login.help.as_deref(),
            lockout: super::lockout_rule(req.state.config.lockout.password_failures, req),
        }),
    )
}

/// The forgot page, with a new captcha when the form is shown.
async fn forgot_page(
    req: &Request<'_>,
    status: u16,
    login: &str,
    sent: bool,
    error: Option<&str>,
) -> Reply {
    let (csrf, fresh) = form_token(req);
    let mail = req.state.mailer.is_some();
    let needed = match captcha_needed(req).await {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    let captcha = if mail && !sent && needed {
        match new_captcha(req).await {
            Ok(c) => Some(c),
            Err(reply) => return reply,
        }
    } else {
        None
    };
    let refresh = match login {
        "" => "/.menshen/password/forgot".to_string(),
        name => format!(
            "/.menshen/password/forgot?login={}",
            super::encode_query_value(name)
        ),
    };
    let html = menshen_pages::render_forgot(&ForgotPage {
        lang: req.lang,
        site_name: req.site_name(),
        csrf: &csrf,
        login,
        mail,
        sent,
        error,
        captcha: captcha.as_ref().map(|(id, src)| ForgotCaptcha {
            id,
            image_src: src,
            refresh_href: &refresh,
        }),
        support: req.state.config.login.support.as_deref(),
    });
    let reply = Reply::html(status, html);
    if fresh {
        reply.with_cookie(cookies::set(req.names.csrf, &csrf, req.names, None))
    } else {
        reply
    }
}

pub async fn forgot_get(req: &Request<'_>) -> Reply {
    // `login`: what was typed, kept across 更換圖片.
    let login = req
        .query
        .get("login")
        .map(str::trim)
        .filter(|l| l.chars().count() <= MAX_LOGIN)
        .unwrap_or("");
    forgot_page(req, 200, login, false, None).await
}

pub async fn forgot_post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let p = req.lang.password_texts();
    let login = form.get("login").unwrap_or("").trim();
    let shown = if login.chars().count() > MAX_LOGIN {
        ""
    } else {
        login
    };
    let Some(mailer) = &req.state.mailer else {
        return forgot_page(req, 200, "", false, None).await;
    };
    if !form_token_matches(req, &form) {
        return forgot_page(req, 403, shown, false, Some(p.msg_form_expired)).await;
    }
    match req.state.regulation.admit(req.client_ip).await {
        Ok(true) => {}
        Ok(false) => return forgot_page(req, 429, shown, false, Some(p.msg_throttled)).await,
        Err(_) => return super::unavailable(req.lang),
    }
    // The login page's captcha rule (`[captcha] mode`); the hourly limits apply regardless.
    let needed = match captcha_needed(req).await {
        Ok(n) => n,
        Err(reply) => return reply,
    };
    if needed {
        match req
            .state
            .captchas
            .check(
                form.get("captcha_id").unwrap_or(""),
                form.get("captcha").unwrap_or(""),
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return forgot_page(req, 400, shown, false, Some(p.msg_captcha_wrong)).await;
            }
            Err(_) => return super::unavailable(req.lang),
        }
    }
    if login.is_empty() || login.chars().count() > MAX_LOGIN {
        return forgot_page(req, 400, shown, false, Some(p.msg_missing)).await;
    }
    match req.state.resets.address_allows(req.client_ip).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            LOGINS
                .with_label_values(&["password_reset", "throttled"])
                .inc();
            return forgot_page(req, 429, shown, false, Some(p.msg_throttled)).await;
        }
        Err(_) => return super::unavailable(req.lang),
    }
    let store = match req.state.accounts().await {
        Ok(s) => s,
        Err(_) => return super::unavailable(req.lang),
    };
    // A name first; an address when no account has that name (names may look like addresses).
    let found = match store.find_by_login(login).await {
        Ok(Some(a)) => Ok(Some(a)),
        Ok(None) => store.find_by_email(login).await,
        Err(e) => Err(e),
    };
    let account = match found {
        Ok(a) => a.filter(|a| a.enabled),
        Err(e) => {
            tracing::error!("account lookup failed: {e:#}");
            return super::unavailable(req.lang);
        }
    };
    let subject = account
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_else(|| menshen_policies::canonical_login_name(login));
    let allowed = match req.state.resets.subject_allows(&subject).await {
        Ok(r) => r,
        Err(_) => return super::unavailable(req.lang),
    };
    let has_address = account.as_ref().is_some_and(|a| !a.email.trim().is_empty());
    let serve = account.as_ref().filter(|_| has_address && allowed.is_ok());
    let placeholder = stand_in("");
    let token = match req.state.resets.issue(serve.unwrap_or(&placeholder)).await {
        Ok(t) => t,
        Err(_) => return super::unavailable(req.lang),
    };
    let outcome = match (&account, has_address, allowed) {
        (None, _, _) => "unknown",
        (Some(_), false, _) => "no_address",
        (Some(_), true, Err(Limited::Account | Limited::Address)) => "limited",
        (Some(_), true, Ok(())) => "sent",
    };
    if let Some(a) = serve {
        let Some(origin) = link_origin(req) else {
            tracing::error!(
                "password reset link not sent: this host is not a configured host name; set \
                 mail.link_base"
            );
            return forgot_page(req, 200, "", true, None).await;
        };
        let link = format!("{origin}/.menshen/password/reset?token={token}");
        let when = super::account::taipei_datetime(clock::now_secs() as i64);
        let ip = req.client_ip_text();
        let text = menshen_pages::reset_mail(
            &mail_context(req, a, &when, &ip),
            &link,
            recovery::LIFETIME.as_secs() / 60,
        );
        mailer.send("password_reset", &a.email, text);
    }
    LOGINS
        .with_label_values(&[
            "password_reset",
            if outcome == "unknown" {
                "failure"
            } else {
                outcome
            },
        ])
        .inc();
    // Known accounts get the request on their record; unknown names are logged like failed
    // logins (name as typed), so both cost one database write.
    activity(
        req,
        account.as_ref(),
        login,
        "password_reset_request",
        "mail",
        if outcome == "unknown" {
            "failure"
        } else {
            outcome
        },
        "",
    )
    .await;
    forgot_page(req, 200, "", true, None).await
}

fn mail_context<'a>(
    req: &Request<'_>,
    account: &'a Account,
    when: &'a str,
    ip: &'a str,
) -> MailContext<'a> {
    MailContext {
        lang: req.lang,
        display_name: &account.display_name,
        login_name: &account.login_name,
        when,
        client_ip: ip,
    }
}

/// The origin put in a mailed link: `mail.link_base`, else the portal, else this host when it
/// is one of the site's configured names. Never a Host header that only the catch-all site
/// matched: a forged Host would send the victim's token to the forger's server.
fn link_origin(req: &Request<'_>) -> Option<String> {
    if let Some(base) = req
        .state
        .config
        .mail
        .as_ref()
        .and_then(|m| m.link_base.clone())
    {
        return Some(base);
    }
    if let Some(portal) = &req.state.portal {
        return Some(portal.origin(req.tls, &req.host));
    }
    let host = req.host.trim().to_ascii_lowercase();
    let (site, _) = req.state.router.exact(&host)?;
    if site.config.name != req.site.config.name || host.is_empty() {
        return None;
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    valid.then(|| format!("{}://{host}", if req.tls { "https" } else { "http" }))
}

/// The form of the mailed link (or of a change), re-shown with what went wrong.
fn form_page(
    req: &Request<'_>,
    status: u16,
    csrf: &str,
    kind: PasswordFormKind<'_>,
    errors: &[String],
) -> Reply {
    Reply::html(
        status,
        menshen_pages::render_password_form(&PasswordFormPage {
            lang: req.lang,
            site_name: req.site_name(),
            csrf,
            kind,
            policy: &req.state.config.login.password_policy,
            errors,
        }),
    )
}

fn notice(req: &Request<'_>, status: u16, notice: PasswordNotice) -> Reply {
    Reply::html(
        status,
        menshen_pages::render_password_notice(&NoticePage {
            lang: req.lang,
            site_name: req.site_name(),
            notice,
        }),
    )
}

/// The account a link stands for, when the link is still good for it.
async fn account_of_link(req: &Request<'_>, token: &str) -> Result<Option<Account>, Reply> {
    let claim = match req.state.resets.peek(token).await {
        Ok(c) => c,
        Err(_) => return Err(super::unavailable(req.lang)),
    };
    let Some(claim) = claim else {
        return Ok(None);
    };
    let store = req
        .state
        .accounts()
        .await
        .map_err(|_| super::unavailable(req.lang))?;
    match store.find_by_id(&claim.account_id).await {
        Ok(Some(a)) if claim.holds_for(&a) => Ok(Some(a)),
        Ok(_) => Ok(None),
        Err(_) => Err(super::unavailable(req.lang)),
    }
}

pub async fn reset_get(req: &Request<'_>) -> Reply {
    let token = req.query.get("token").unwrap_or("");
    match account_of_link(req, token).await {
        Ok(Some(_)) => {}
        Ok(None) => return notice(req, 410, PasswordNotice::LinkInvalid),
        Err(reply) => return reply,
    }
    let (csrf, fresh) = form_token(req);
    let reply = form_page(req, 200, &csrf, PasswordFormKind::Reset { token }, &[]);
    if fresh {
        reply.with_cookie(cookies::set(req.names.csrf, &csrf, req.names, None))
    } else {
        reply
    }
}

/// What is wrong with a new password and its confirmation, in words; empty when nothing is.
fn problems_in(
    req: &Request<'_>,
    password: &str,
    confirm: &str,
    problems: &[menshen_policies::password::PasswordProblem],
) -> Vec<String> {
    let p = req.lang.password_texts();
    let policy = &req.state.config.login.password_policy;
    let mut out: Vec<String> = problems
        .iter()
        .map(|problem| menshen_pages::password_rule_text(req.lang, *problem, policy))
        .collect();
    if password != confirm {
        out.push(p.msg_mismatch.to_owned());
    }
    out
}

/// Checks the rules and hashes the new password on the password pool: `Ok(Err(problems))`
/// when the rules refuse it, `Err(reply)` for busy or broken.
async fn checked_hash(
    req: &Request<'_>,
    password: &str,
    account: &Account,
) -> Result<Result<String, Vec<menshen_policies::password::PasswordProblem>>, Reply> {
    let slot = match req.state.passwords.admit() {
        Ok(slot) => slot,
        Err(_) => return Err(super::busy(req.lang)),
    };
    let password = password.to_owned();
    let login_name = account.login_name.clone();
    // What else a guesser would try first: the person's name and the mailbox name.
    let display_name = account.display_name.clone();
    let mailbox = account
        .email
        .split('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let policy: PasswordPolicy = req.state.config.login.password_policy.clone();
    let outcome = slot
        .run(move || {
            // zxcvbn takes up to tens of milliseconds: it runs here, off the proxy's workers.
            let problems = check_password_in_context(
                &password,
                &login_name,
                &[&display_name, &mailbox],
                &policy,
            );
            if !problems.is_empty() {
                return Ok(Err(problems));
            }
            hash_password_blocking(&password).map(Ok)
        })
        .await;
    match outcome {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => {
            tracing::error!("password hashing failed: {e:#}");
            Err(super::unavailable(req.lang))
        }
        Err(HashError::Busy) => Err(super::busy(req.lang)),
        Err(HashError::Internal(e)) => {
            tracing::error!("{e}");
            Err(super::unavailable(req.lang))
        }
    }
}

/// The two new-password fields, or the sentence for what is missing.
fn new_password_fields<'f>(
    req: &Request<'_>,
    form: &'f crate::forms::Form,
) -> Result<(&'f str, &'f str), String> {
    let p = req.lang.password_texts();
    let password = form.get("password").unwrap_or("");
    let confirm = form.get("password_confirm").unwrap_or("");
    if password.is_empty() || confirm.is_empty() {
        return Err(p.msg_missing.to_owned());
    }
    if password.len() > MAX_PASSWORD_BYTES || confirm.len() > MAX_PASSWORD_BYTES {
        let policy = &req.state.config.login.password_policy;
        return Err(menshen_pages::password_rule_text(
            req.lang,
            menshen_policies::password::PasswordProblem::TooLong,
            policy,
        ));
    }
    Ok((password, confirm))
}

pub async fn reset_post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let token = form.get("token").unwrap_or("");
    let (csrf, _) = form_token(req);
    let kind = PasswordFormKind::Reset { token };
    if !form_token_matches(req, &form) {
        let expired = [req.lang.password_texts().msg_form_expired.to_owned()];
        return form_page(req, 403, &csrf, kind, &expired);
    }
    let account = match account_of_link(req, token).await {
        Ok(Some(a)) => a,
        Ok(None) => return notice(req, 410, PasswordNotice::LinkInvalid),
        Err(reply) => return reply,
    };
    let (password, confirm) = match new_password_fields(req, &form) {
        Ok(f) => f,
        Err(e) => return form_page(req, 400, &csrf, kind, &[e]),
    };
    if password != confirm {
        return form_page(
            req,
            400,
            &csrf,
            kind,
            &problems_in(req, password, confirm, &[]),
        );
    }
    let hash = match checked_hash(req, password, &account).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(problems)) => {
            let errors = problems_in(req, password, confirm, &problems);
            return form_page(req, 400, &csrf, kind, &errors);
        }
        Err(reply) => return reply,
    };
    // Used up only now, atomically: of two submissions racing, one sets the password.
    match req.state.resets.redeem(token).await {
        Ok(Some(claim)) if claim.account_id == account.id => {}
        Ok(_) => return notice(req, 410, PasswordNotice::LinkInvalid),
        Err(_) => return super::unavailable(req.lang),
    }
    let now = clock::now_secs() as i64;
    let store = match req.state.accounts().await {
        Ok(s) => s,
        Err(_) => return super::unavailable(req.lang),
    };
    // The database voids every earlier session on every instance (from the next account
    // poll); the session store ends them at once.
    if let Err(e) = store
        .replace_password(&account.id, &hash, now, Some(now - 1))
        .await
    {
        tracing::error!("password reset not stored: {e:#}");
        return super::unavailable(req.lang);
    }
    if req
        .state
        .sessions
        .destroy_account(&account.id)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    LOGINS
        .with_label_values(&["password_reset", "success"])
        .inc();
    tracing::info!(user = %account.login_name, ip = ?req.client_ip, "password reset through a mailed link");
    if !activity(
        req,
        Some(&account),
        "",
        "password_reset",
        "mail",
        "success",
        "",
    )
    .await
    {
        return super::unavailable(req.lang);
    }
    notify_changed(req, &account, true);
    let mut reply = Reply::redirect(303, "/.menshen/login?reset=1");
    if req.cookies.session.value().is_some() {
        reply = reply.with_cookie(cookies::clear(req.names.session, req.names));
    }
    reply
}

/// Mails 您的密碼已變更 to the address on file, when there is one and mail is configured.
fn notify_changed(req: &Request<'_>, account: &Account, by_reset: bool) {
    let Some(mailer) = &req.state.mailer else {
        return;
    };
    if account.email.trim().is_empty() {
        return;
    }
    let when = super::account::taipei_datetime(clock::now_secs() as i64);
    let ip = req.client_ip_text();
    let text = menshen_pages::changed_mail(&mail_context(req, account, &when, &ip), by_reset);
    mailer.send("password_changed", &account.email, text);
}

/// The signed-in session and its account, for the change form.
async fn signed_in(
    req: &Request<'_>,
) -> Result<(String, crate::sessions::SessionData, Account), Reply> {
    let (sid, s) = session_of(
        req,
        Reply::redirect(302, "/.menshen/login?rd=%2F.menshen%2Fpassword%2Fchange"),
    )
    .await?;
    if s.stage != Stage::Authenticated {
        return Err(Reply::redirect(302, "/.menshen/login"));
    }
    let store = req
        .state
        .accounts()
        .await
        .map_err(|_| super::unavailable(req.lang))?;
    match store.find_by_id(&s.account_id).await {
        Ok(Some(a)) => Ok((sid, s, a)),
        Ok(None) => Err(Reply::redirect(302, "/.menshen/login")),
        Err(_) => Err(super::unavailable(req.lang)),
    }
}

pub async fn change_get(req: &Request<'_>) -> Reply {
    let (_, s, account) = match signed_in(req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let reauth = reauth::required(&s, &account);
    form_page(req, 200, &s.csrf, PasswordFormKind::Change { reauth }, &[])
}

pub async fn change_post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let (sid, s, account) = match signed_in(req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let p = req.lang.password_texts();
    let reauth_field = reauth::required(&s, &account);
    let kind = PasswordFormKind::Change {
        reauth: reauth_field,
    };
    if !csrf_matches(&form, &s) {
        return Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some("the form expired; reload the page"),
        );
    }
    if reauth_field == ReauthField::Unavailable {
        return form_page(
            req,
            403,
            &s.csrf,
            kind,
            &[req.lang.texts().msg_reauth_unavailable.to_owned()],
        );
    }
    let (password, confirm) = match new_password_fields(req, &form) {
        Ok(f) => f,
        Err(e) => return form_page(req, 400, &s.csrf, kind, &[e]),
    };
    if password != confirm {
        return form_page(
            req,
            400,
            &s.csrf,
            kind,
            &problems_in(req, password, confirm, &[]),
        );
    }
    // Proof of presence before anything else is looked at: wrong answers count towards the
    // suspension like wrong passwords at the login page.
    match reauth::check(req, &s, &account, &form, "password").await {
        Ok(Proof::Proven) => {}
        Ok(Proof::Missing) => {
            return form_page(req, 400, &s.csrf, kind, &[p.msg_current_missing.to_owned()]);
        }
        Ok(Proof::Wrong) => {
            return form_page(req, 401, &s.csrf, kind, &[p.msg_current_wrong.to_owned()]);
        }
        Ok(Proof::Locked { until }) => {
            let text = p.msg_current_locked.replace("{until}", &until);
            return form_page(req, 403, &s.csrf, kind, &[text]);
        }
        Ok(Proof::Unavailable) => {
            let text = req.lang.texts().msg_reauth_unavailable.to_owned();
            return form_page(req, 403, &s.csrf, kind, &[text]);
        }
        Err(_) => return super::unavailable(req.lang),
    }
    let hash = match checked_hash(req, password, &account).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(problems)) => {
            let errors = problems_in(req, password, confirm, &problems);
            return form_page(req, 400, &s.csrf, kind, &errors);
        }
        Err(reply) => return reply,
    };
    let now = clock::now_secs() as i64;
    let store = match req.state.accounts().await {
        Ok(s) => s,
        Err(_) => return super::unavailable(req.lang),
    };
    if let Err(e) = store.replace_password(&account.id, &hash, now, None).await {
        tracing::error!("password change not stored: {e:#}");
        return super::unavailable(req.lang);
    }
    // Every other session ends; this browser goes on under a new session id.
    let cookie = match super::oidc::keep_only_this_session(req, &sid, &s).await {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    LOGINS
        .with_label_values(&["password_change", "success"])
        .inc();
    tracing::info!(user = %account.login_name, ip = ?req.client_ip, "password changed");
    if !activity(
        req,
        Some(&account),
        "",
        "password_change",
        "password",
        "success",
        "",
    )
    .await
    {
        return super::unavailable(req.lang);
    }
    notify_changed(req, &account, false);
    Reply::redirect(303, "/.menshen/account?msg=password_changed").with_cookie(cookie)
}
