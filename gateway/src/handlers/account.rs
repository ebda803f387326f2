//! `GET /.menshen/account`: the profile pages (個人資料管理, 帳號活動紀錄 with the list of
//! active sign-ins, 登入設定), `POST /.menshen/account/oidc/{provider}/unbind`, and
//! `POST /.menshen/account/sessions/{handle}/end` / `…/sessions/end-all` (登出此裝置 /
//! 登出所有裝置).

use menshen_pages::{AccountMessage, AccountPage, AccountTab, ActivityRow, ProviderRow, SignInRow};
use pingora::proxy::Session;

use super::{Request, activity, csrf_matches, session_of};
use crate::respond::Reply;
use crate::sessions::{SessionData, Stage, store_key};
use crate::{clock, cookies};

/// How many hex digits of a session's store key name it in the list's forms: enough to tell
/// one person's sessions apart, and no use as a cookie.
const HANDLE_LEN: usize = 16;

/// One sign-in of the list: its store key and the session, with the site sessions linked to it
/// (single sign-on) folded in as its systems.
struct SignIn {
    /// The portal (or only) session's store key.
    key: String,
    handle: String,
    started: String,
    last_used: String,
    data: SessionData,
    systems: String,
    current: bool,
}

/// The person's complete sign-ins, this one first, newest next.
async fn sign_ins(
    req: &Request<'_>,
    current_id: &str,
    s: &SessionData,
) -> Result<Vec<SignIn>, Reply> {
    let now = clock::now_secs();
    let all = req
        .state
        .sessions
        .of_account(&s.account_id, now)
        .await
        .map_err(|_| super::unavailable(req.lang))?;
    let current_key = store_key(current_id);
    // The sign-in a site session belongs to is its portal session; the list shows sign-ins.
    let current_root = s.portal.clone().unwrap_or_else(|| current_key.clone());
    let mut rows: Vec<SignIn> = all
        .iter()
        .filter(|(_, d)| d.portal.is_none() && d.is_authenticated())
        .map(|(key, d)| {
            let mut systems: Vec<&str> = all
                .iter()
                .filter(|(_, site)| site.portal.as_deref() == Some(key.as_str()))
                .filter_map(|(_, site)| site.site.as_deref())
                .collect();
            systems.sort_unstable();
            systems.dedup();
            let last_seen = all
                .iter()
                .filter(|(_, site)| site.portal.as_deref() == Some(key.as_str()))
                .map(|(_, site)| site.last_seen)
                .fold(d.last_seen, u64::max);
            SignIn {
                key: key.clone(),
                handle: key.chars().take(HANDLE_LEN).collect(),
                started: taipei_datetime(d.created_at as i64),
                last_used: taipei_datetime(last_seen as i64),
                data: d.clone(),
                systems: systems.join(", "),
                current: *key == current_root,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then(b.data.created_at.cmp(&a.data.created_at))
    });
    Ok(rows)
}

/// "2026-11-24 14:05" in Taiwan time.
pub(super) fn taipei_datetime(unix: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix.saturating_add(8 * 3600)) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

pub async fn get(req: &Request<'_>) -> Reply {
    let (sid, s) = match session_of(
        req,
        Reply::redirect(302, "/.menshen/login?rd=%2F.menshen%2Faccount"),
    )
    .await
    {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if s.stage != Stage::Authenticated {
        return Reply::redirect(302, "/.menshen/login");
    }
    let store = match req.state.accounts().await {
        Ok(store) => store,
        Err(_) => return super::unavailable(req.lang),
    };
    let (account, records, bindings, holder, mobile_holder) = match (
        store.find_by_id(&s.account_id).await,
        store.activity_of(&s.login_name, 50).await,
        store.oidc_bindings_of(&s.account_id).await,
        store.certificate_holder(&s.account_id).await,
        store.mobile_holder(&s.account_id).await,
    ) {
        (Ok(Some(a)), Ok(r), Ok(b), Ok(h), Ok(m)) => (a, r, b, h, m),
        (Ok(None), _, _, _, _) => return Reply::redirect(302, "/.menshen/login"),
        _ => return super::unavailable(req.lang),
    };
    let bound_at = |h: &Option<(String, String, i64)>| {
        h.as_ref()
            .map(|(_, _, at)| taipei_datetime(*at))
            .unwrap_or_default()
    };
    let holder_bound_at = bound_at(&holder);
    let mobile_bound_at = bound_at(&mobile_holder);
    let when: Vec<String> = records.iter().map(|r| taipei_datetime(r.at)).collect();
    let activity_rows: Vec<ActivityRow> = records
        .iter()
        .zip(&when)
        .map(|(r, w)| ActivityRow {
            when: w,
            event: &r.event,
            method: &r.method,
            outcome: &r.outcome,
            client_ip: &r.client_ip,
            user_agent: &r.user_agent,
        })
        .collect();
    let may_bind = account.second_factor_bound();
    let providers: Vec<ProviderRow> = req
        .state
        .providers
        .iter()
        .map(|p| ProviderRow {
            id: &p.config.id,
            label: &p.config.display_name,
            bound_as: bindings
                .iter()
                .find(|(id, _)| *id == p.config.id)
                .map(|(_, claim)| claim.as_str()),
            may_bind,
        })
        .collect();
    let label_of = |id: Option<&str>| {
        req.state
            .providers
            .iter()
            .find(|p| Some(p.config.id.as_str()) == id)
            .map(|p| p.config.display_name.clone())
            .unwrap_or_default()
    };
    let message = match req.query.get("msg") {
        Some("bound") => Some(AccountMessage::OidcBound {
            label: label_of(req.query.get("p")),
        }),
        Some("unbound") => Some(AccountMessage::OidcUnbound {
            label: label_of(req.query.get("p")),
        }),
        Some("conflict") => Some(AccountMessage::OidcConflict {
            label: label_of(req.query.get("p")),
        }),
        Some("needs2fa") => Some(AccountMessage::OidcNeedsSecondFactor),
        Some("failed") => Some(AccountMessage::Failed),
        Some("device") => Some(AccountMessage::DeviceSignedOut),
        Some("password_changed") => Some(AccountMessage::PasswordChanged),
        Some("reauth_missing") => Some(AccountMessage::ReauthMissing),
        Some("reauth_wrong") => Some(AccountMessage::ReauthWrong),
        Some("reauth_locked") => Some(AccountMessage::ReauthLocked {
            until: req
                .query
                .get("until")
                .filter(|u| u.len() <= 8 && u.bytes().all(|b| b.is_ascii_digit() || b == b':'))
                .unwrap_or("")
                .to_string(),
        }),
        Some("reauth_unavailable") => Some(AccountMessage::ReauthUnavailable),
        _ => None,
    };
    let certificate = super::bind::certificate_row(req, &account);
    let sign_ins = match sign_ins(req, &sid, &s).await {
        Ok(rows) => rows,
        Err(reply) => return reply,
    };
    let sign_in_rows: Vec<SignInRow> = sign_ins
        .iter()
        .map(|r| SignInRow {
            handle: &r.handle,
            started: &r.started,
            last_used: &r.last_used,
            client_ip: &r.data.client_ip,
            device: &r.data.device,
            systems: &r.systems,
            current: r.current,
        })
        .collect();
    let html = menshen_pages::render_account(&AccountPage {
        lang: req.lang,
        tab: AccountTab::from_query(req.query.get("tab")),
        csrf: &s.csrf,
        login_name: &account.login_name,
        display_name: &account.display_name,
        school_code: &account.school_code,
        roles: &account.roles,
        email: &account.email,
        auth_method: &s.auth_method,
        activity: &activity_rows,
        otp_bound: account.otp_bound,
        certificate,
        certificate_holder: holder.as_ref().map(|(name, last4, _)| {
            menshen_pages::CertificateHolder {
                name,
                id_last4: last4,
                bound_at: &holder_bound_at,
            }
        }),
        mobile: super::mobile::mobile_row(req, &account),
        mobile_holder: mobile_holder.as_ref().map(|(name, last4, _)| {
            menshen_pages::CertificateHolder {
                name,
                id_last4: last4,
                bound_at: &mobile_bound_at,
            }
        }),
        providers: &providers,
        message,
        sign_ins: &sign_in_rows,
        reauth: super::reauth::required(&s, &account),
    });
    // Linking a provider is a form POST answered with a redirect to the provider: the
    // policy's `form-action` must name the providers' origins on this page.
    let origins: Vec<String> = req
        .state
        .providers
        .iter()
        .flat_map(|p| p.form_origins())
        .collect();
    let policy = if origins.is_empty() {
        req.state.csp.clone()
    } else {
        req.state.csp.replacen(
            "form-action 'self'",
            &format!("form-action 'self' {}", origins.join(" ")),
            1,
        )
    };
    Reply::html(200, html).with_header("Content-Security-Policy", policy)
}

/// The form of a signed-in account page (the session complete, the form's token its own),
/// or the reply that refuses it.
async fn signed_in_form(
    session: &mut Session,
    req: &Request<'_>,
) -> Result<(crate::forms::Form, String, crate::sessions::SessionData), Reply> {
    let form = super::read_form(session, req.lang).await?;
    let (sid, s) = session_of(req, Reply::redirect(303, "/.menshen/login")).await?;
    if s.stage != Stage::Authenticated {
        return Err(Reply::redirect(303, "/.menshen/login"));
    }
    if !csrf_matches(&form, &s) {
        return Err(Reply::error(
            req.lang,
            menshen_pages::ErrorKind::Forbidden,
            Some("the form has expired; please reload the page and try again"),
        ));
    }
    Ok((form, sid, s))
}

pub async fn unbind(session: &mut Session, req: &Request<'_>, provider: &str) -> Reply {
    let (form, sid, s) = match signed_in_form(session, req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if !req.state.providers.iter().any(|p| p.config.id == provider) {
        return Reply::error(req.lang, menshen_pages::ErrorKind::NotFound, None);
    }
    let account = match super::bind::account_of(req, &s).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    if let Some(refusal) =
        reauth_refusal(req, &s, &account, &form, &format!("oidc:{provider}")).await
    {
        return refusal;
    }
    let store = match req.state.accounts().await {
        Ok(store) => store,
        Err(_) => return super::unavailable(req.lang),
    };
    match store.unbind_oidc(&s.account_id, provider).await {
        Ok(true) => {}
        Ok(false) => return Reply::redirect(303, "/.menshen/account?tab=settings"),
        Err(_) => return super::unavailable(req.lang),
    }
    activity(
        req,
        None,
        &s.login_name,
        "unbind",
        &format!("oidc:{provider}"),
        "success",
        "",
    )
    .await;
    match super::oidc::keep_only_this_session(req, &sid, &s).await {
        Ok(cookie) => Reply::redirect(
            303,
            &format!("/.menshen/account?tab=settings&msg=unbound&p={provider}"),
        )
        .with_cookie(cookie),
        Err(reply) => reply,
    }
}

/// Checks the owner's proof for a change made from the account page; the refusal goes back to
/// the login settings tab with the reason (`None`: proven).
pub async fn reauth_refusal(
    req: &Request<'_>,
    s: &SessionData,
    account: &crate::accounts::Account,
    form: &crate::forms::Form,
    what: &str,
) -> Option<Reply> {
    use super::reauth::Proof;
    let msg = match super::reauth::check(req, s, account, form, what).await {
        Ok(Proof::Proven) => return None,
        Ok(Proof::Missing) => "reauth_missing".to_string(),
        Ok(Proof::Wrong) => "reauth_wrong".to_string(),
        Ok(Proof::Locked { until }) => {
            format!("reauth_locked&until={}", super::encode_query_value(&until))
        }
        Ok(Proof::Unavailable) => "reauth_unavailable".to_string(),
        Err(_) => return Some(super::unavailable(req.lang)),
    };
    Some(Reply::redirect(
        303,
        &format!("/.menshen/account?tab=settings&msg={msg}"),
    ))
}

/// `POST /.menshen/account/sessions/{handle}/end` (登出此裝置) and `…/sessions/end-all`
/// (登出所有裝置, `handle` = `None`). Ending the sign-in this page is shown in logs out here too.
pub async fn end_sign_in(session: &mut Session, req: &Request<'_>, handle: Option<&str>) -> Reply {
    let (_, sid, s) = match signed_in_form(session, req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let signed_out = Reply::redirect(303, "/.menshen/login?lo=1")
        .with_cookie(cookies::clear(req.names.session, req.names));
    let Some(handle) = handle else {
        if req
            .state
            .sessions
            .destroy_account(&s.account_id)
            .await
            .is_err()
        {
            return super::unavailable(req.lang);
        }
        super::session_activity(req, &s, "logout", "all_devices", "").await;
        return signed_out;
    };
    let rows = match sign_ins(req, &sid, &s).await {
        Ok(rows) => rows,
        Err(reply) => return reply,
    };
    let Some(row) = rows.iter().find(|r| r.handle == handle) else {
        // Already gone (ended elsewhere, or timed out): nothing left to do.
        return Reply::redirect(303, "/.menshen/account?tab=activity&msg=device");
    };
    if req.state.sessions.destroy_key(&row.key).await.is_err() {
        return super::unavailable(req.lang);
    }
    super::session_activity(req, &s, "logout", "device", &row.data.client_ip).await;
    if row.current {
        signed_out
    } else {
        Reply::redirect(303, "/.menshen/account?tab=activity&msg=device")
    }
}
