//! Binding second factors: `GET /.menshen/bind` (the manual's table of methods) and
//! `GET/POST /.menshen/bind/otp`.
//!
//! Reachable by a session that must bind (forced, after a password) or by a fully
//! authenticated one (adding or changing a method); never by a password alone when the
//! account already has a second factor (the login flow sends those to the OTP step).
//!
//! Each view of the OTP page makes a fresh 160-bit secret, kept server-side for this view only
//! (a short lifetime, tied to the session, a few tries); the QR code is drawn here. A correct
//! code stores the secret sealed at rest, logs the change, ends every session of the account,
//! and sends the user to log in again with the new method, as the manual says.

use std::time::Duration;

use menshen_otp::totp::{self, Secret};
use menshen_pages::{
    BindOtpMessage, BindOtpPage, BindPage, CertificatePurpose, CertificateRow, ErrorKind,
    ReauthField,
};
use menshen_policies::factors::may_bind_certificate;
use pingora::proxy::Session;
use serde::{Deserialize, Serialize};

use super::reauth::{self, Proof};
use super::{Request, activity, csrf_matches, session_of};
use crate::accounts::Account;
use crate::clock;
use crate::cookies;
use crate::respond::Reply;
use crate::sessions::{SessionData, Stage, store_key};

/// How long one page view's secret waits for its code, and how many wrong codes it takes.
const VIEW_LIFETIME: Duration = Duration::from_secs(600);
const VIEW_TRIES: u32 = 5;
/// How recent a full login must be to change a second factor.
const RECENT_LOGIN_SECS: u64 = 600;

/// A page view's secret, held server-side.
#[derive(Serialize, Deserialize)]
struct PendingOtp {
    /// The session (hashed id) that saw this view: another browser cannot use it.
    session: String,
    account_id: String,
    secret_b32: String,
    tries: u32,
}

fn pending_key(bind_id: &str) -> String {
    format!("bind:{bind_id}")
}

/// The refusal's detail when a session is too old to change a sign-in method.
pub const RELOGIN_TO_CHANGE: &str = "請先登出並重新登入，再變更驗證方式 / Sign out and sign in again before changing a sign-in method";

/// Whether a full session is fresh enough to change a second factor.
pub fn recent_login(s: &SessionData) -> bool {
    clock::now_secs().saturating_sub(s.created_at) <= RECENT_LOGIN_SECS
}

/// The session allowed on binding pages, or where to send the browser instead.
pub(super) async fn binding_session(req: &Request<'_>) -> Result<(String, SessionData), Reply> {
    let (id, s) = session_of(req, Reply::redirect(302, "/.menshen/login")).await?;
    match s.stage {
        Stage::MustBind => Ok((id, s)),
        // Changing a second factor from a full session needs a recent login, so a session
        // left open (or stolen) cannot replace the owner's authenticator.
        Stage::Authenticated if recent_login(&s) => Ok((id, s)),
        Stage::Authenticated => Err(Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some(RELOGIN_TO_CHANGE),
        )),
        Stage::NeedsSecondFactor => Err(Reply::redirect(302, "/.menshen/otp")),
    }
}

/// The session's account, or where to send the browser instead.
pub async fn account_of(req: &Request<'_>, s: &SessionData) -> Result<Account, Reply> {
    match req.state.accounts().await {
        Ok(store) => match store.find_by_id(&s.account_id).await {
            Ok(Some(a)) => Ok(a),
            Ok(None) => Err(Reply::redirect(302, "/.menshen/login")),
            Err(_) => Err(super::unavailable(req.lang)),
        },
        Err(_) => Err(super::unavailable(req.lang)),
    }
}

pub async fn page(req: &Request<'_>) -> Reply {
    let (_, s) = match binding_session(req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let account = match account_of(req, &s).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let certificate = certificate_row(req, &account);
    let html = menshen_pages::render_bind(&BindPage {
        lang: req.lang,
        display_name: &s.display_name,
        csrf: &s.csrf,
        otp_bound: account.otp_bound,
        certificate,
        mobile: super::mobile::mobile_row(req, &account),
        forced: s.stage == Stage::MustBind,
    });
    Reply::html(200, html)
}

/// What the certificate row offers this account: nothing for AA accounts, nothing when the
/// operator has not configured certificates, else binding or (bound) re-binding a card.
pub fn certificate_row(req: &Request<'_>, account: &Account) -> CertificateRow<'static> {
    if !may_bind_certificate(account.is_aa()) {
        CertificateRow::NotForAa
    } else if req.state.certificates.is_none() {
        CertificateRow::NotYetAvailable
    } else if account.certificate_bound {
        CertificateRow::Rebindable {
            href: CERTIFICATE_PAGE,
        }
    } else {
        CertificateRow::Available {
            href: CERTIFICATE_PAGE,
        }
    }
}

const CERTIFICATE_PAGE: &str = "/.menshen/bind/certificate";

/// `GET /.menshen/bind/certificate`: the card binding page (a renewed card re-binds here).
/// AA accounts are refused; without `[certificate]` the binding choice is shown instead.
pub async fn certificate(req: &Request<'_>) -> Reply {
    let (_, s) = match binding_session(req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if s.roles.iter().any(|r| r == "aa") {
        return Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some("學校管理者(AA帳號)僅提供 OTP 驗證綁定 / AA accounts can bind OTP only"),
        );
    }
    let Some(certificates) = req.state.certificates.as_deref() else {
        return Reply::redirect(302, "/.menshen/bind");
    };
    let account = match account_of(req, &s).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    super::certificate::render_page(
        req,
        certificates,
        CertificatePurpose::Bind {
            display_name: &s.display_name,
            forced: s.stage == Stage::MustBind,
            reauth: reauth::required(&s, &account),
        },
        &s.csrf,
    )
}

#[allow(clippy::too_many_arguments)]
fn render_otp(
    req: &Request<'_>,
    status: u16,
    s: &SessionData,
    bind_id: &str,
    secret: &Secret,
    message: Option<BindOtpMessage>,
    proof: ReauthField,
) -> Reply {
    let issuer = &req.state.config.otp.issuer;
    let uri = totp::otpauth_uri(secret, issuer, &s.login_name);
    let Ok(qr) = menshen_otp::qr::svg_data_uri(&uri) else {
        return Reply::error(
            req.lang,
            ErrorKind::BadRequest,
            Some("the login name is too long for a QR code"),
        );
    };
    let html = menshen_pages::render_bind_otp(&BindOtpPage {
        lang: req.lang,
        csrf: &s.csrf,
        bind_id,
        qr_data_uri: &qr,
        secret_grouped: &secret.to_base32_grouped(),
        issuer,
        account: &s.login_name,
        message,
        reauth: proof,
    });
    Reply::html(status, html)
}

/// A fresh secret for a new page view.
async fn new_view(
    req: &Request<'_>,
    id: &str,
    s: &SessionData,
    status: u16,
    message: Option<BindOtpMessage>,
    proof: ReauthField,
) -> Reply {
    let secret = Secret::generate();
    let bind_id = crate::random::token();
    let pending = PendingOtp {
        session: store_key(id),
        account_id: s.account_id.clone(),
        secret_b32: secret.to_base32(),
        tries: 0,
    };
    let Ok(json) = serde_json::to_vec(&pending) else {
        return super::unavailable(req.lang);
    };
    if req
        .state
        .volatile
        .put(&pending_key(&bind_id), &json, VIEW_LIFETIME)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    render_otp(req, status, s, &bind_id, &secret, message, proof)
}

pub async fn otp_get(req: &Request<'_>) -> Reply {
    let (id, s) = match binding_session(req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    match account_of(req, &s).await {
        Ok(account) => new_view(req, &id, &s, 200, None, reauth::required(&s, &account)).await,
        Err(reply) => reply,
    }
}

pub async fn otp_post(session: &mut Session, req: &Request<'_>) -> Reply {
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let (id, s) = match binding_session(req).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    if !csrf_matches(&form, &s) {
        return Reply::error(
            req.lang,
            ErrorKind::Forbidden,
            Some("the form has expired; please try again"),
        );
    }
    let account = match account_of(req, &s).await {
        Ok(a) => a,
        Err(reply) => return reply,
    };
    let proof = reauth::required(&s, &account);
    let bind_id = form.get("bind_id").unwrap_or("");
    if !crate::random::is_token(bind_id) {
        return new_view(req, &id, &s, 400, Some(BindOtpMessage::Expired), proof).await;
    }
    let key = pending_key(bind_id);
    let pending: Option<PendingOtp> = match req.state.volatile.get(&key).await {
        Ok(raw) => raw.and_then(|b| serde_json::from_slice(&b).ok()),
        Err(_) => return super::unavailable(req.lang),
    };
    let Some(mut pending) =
        pending.filter(|p| p.session == store_key(&id) && p.account_id == s.account_id)
    else {
        return new_view(req, &id, &s, 400, Some(BindOtpMessage::Expired), proof).await;
    };
    let Some(secret) = Secret::from_base32(&pending.secret_b32) else {
        return new_view(req, &id, &s, 400, Some(BindOtpMessage::Expired), proof).await;
    };
    // The owner's proof before anything else about the new code: a session alone cannot
    // replace the authenticator. The same view stays (the scanned QR code is still good).
    let refusal = match reauth::check(req, &s, &account, &form, "otp").await {
        Ok(Proof::Proven) => None,
        Ok(Proof::Missing) => Some((400, BindOtpMessage::ReauthMissing)),
        Ok(Proof::Wrong) => Some((401, BindOtpMessage::ReauthWrong)),
        Ok(Proof::Locked { until }) => Some((403, BindOtpMessage::ReauthLocked { until })),
        Ok(Proof::Unavailable) => Some((403, BindOtpMessage::ReauthUnavailable)),
        Err(_) => return super::unavailable(req.lang),
    };
    if let Some((status, message)) = refusal {
        return render_otp(req, status, &s, bind_id, &secret, Some(message), proof);
    }
    let now = clock::now_secs();
    let Some(step) = totp::matching_step(&secret, form.get("code").unwrap_or(""), now) else {
        pending.tries += 1;
        activity(
            req,
            None,
            &s.login_name,
            "bind",
            "otp",
            "failure",
            "wrong code",
        )
        .await;
        if pending.tries >= VIEW_TRIES {
            let _ = req.state.volatile.delete(&[key]).await;
            return new_view(req, &id, &s, 400, Some(BindOtpMessage::Expired), proof).await;
        }
        if let Ok(json) = serde_json::to_vec(&pending)
            && req
                .state
                .volatile
                .put(&key, &json, VIEW_LIFETIME)
                .await
                .is_err()
        {
            return super::unavailable(req.lang);
        }
        return render_otp(
            req,
            401,
            &s,
            bind_id,
            &secret,
            Some(BindOtpMessage::WrongCode),
            proof,
        );
    };
    // Single use: of two racing submits of this view, only the one that takes it binds.
    match req.state.volatile.take(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => return new_view(req, &id, &s, 400, Some(BindOtpMessage::Expired), proof).await,
        Err(_) => return super::unavailable(req.lang),
    }
    let sealed = req
        .state
        .keyring
        .seal(secret.as_bytes(), s.account_id.as_bytes());
    let store = match req.state.accounts().await {
        Ok(store) => store,
        Err(_) => return super::unavailable(req.lang),
    };
    if store
        .bind_otp(&s.account_id, &sealed, step as i64, now as i64)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    activity(req, None, &s.login_name, "bind", "otp", "success", "").await;
    if let Ok(Some(account)) = store.find_by_id(&s.account_id).await {
        let method = req.lang.texts().method_otp;
        super::notices::send(
            req,
            &account,
            menshen_pages::NoticeMail::FactorBound { method },
        )
        .await;
    }
    // All the account's sessions end; the user logs in again with the new method.
    if req
        .state
        .sessions
        .destroy_account(&s.account_id)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    tracing::info!(user = %s.login_name, "OTP bound");
    Reply::redirect(303, "/.menshen/login?bound=1&via=otp")
        .with_cookie(cookies::clear(req.names.session, req.names))
}
