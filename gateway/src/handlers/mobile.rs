//! Mobile citizen certificate (行動自然人憑證, TW FidO) sign-in and binding.
//!
//! - `GET /.menshen/mobile?rd=…`: the sign-in form (身分證字號 / 居留證號, push or QR).
//! - `GET /.menshen/bind/mobile`: the same form for binding (a session that must bind, or a
//!   recent full one; staff accounts only).
//! - `POST /.menshen/mobile` (`purpose` = `login` | `bind`): checks the ID's form and check
//!   digit, asks MOI for a ticket (ATH-03 push, or ATH-01 QR) over a fresh challenge naming
//!   this origin, keeps the pending sign-in server-side under a key derived from this
//!   browser (the login form's CSRF cookie, or the binding session), and sends the browser to
//! - `GET /.menshen/mobile/wait?purpose=…`: the waiting page (countdown, QR code, cancel),
//!   whose script polls
//! - `GET /.menshen/mobile/status?purpose=…`: JSON `pending` / `done` / `failed`. Each poll
//!   asks MOI (ATH-02) at most once per 4 s for that sign-in; nothing runs in between, so a
//!   browser that gives up leaves no work behind.
//! - `POST /.menshen/mobile/cancel`.
//!
//! A result is accepted only after every check: the `idp_checksum` (in the client), the
//! hashed ID against the ticket's, the certificate chain to the `[certificate]` anchors with
//! validity, key usage, CRLs and OCSP as configured, the PKCS#1 signature over exactly the
//! challenge we made, the certificate's ID last four against the typed ID, and one use of
//! the pending sign-in. Nothing the browser sends can stand in for MOI's answer: the browser
//! only ever names its own pending sign-in, through its cookies.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use menshen_pages::{
    ErrorKind, MobileFailure, MobileMode, MobilePage, MobilePurpose, MobileWaitPage, render_mobile,
    render_mobile_wait,
};
use menshen_pki::{Rejection, SignedChallenge, VerifiedCertificate};
use menshen_twfido::{Challenge, Kind, ResultOutcome, Signed, TicketOutcome};
use pingora::proxy::Session;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::reauth::{self, Proof};
use super::{Request, activity, csrf_matches};
use crate::accounts::{Account, MobileBindOutcome, MobileBinding};
use crate::certificates::Certificates;
use crate::forms::Form;
use crate::metrics::LOGINS;
use crate::mobile::{ID_HASH_CONTEXT, Mobile, Mode, Pending, Purpose};
use crate::regulation::taipei_clock;
use crate::respond::Reply;
use crate::sessions::{Factor, SessionData, Stage, store_key};
use crate::{clock, cookies, random};

/// The activity log's and the metrics' name of the method, and `X-Menshen-Auth-Method`.
const METHOD: &str = "mobile-certificate";
/// Prompts one ID may receive in [`ID_WINDOW`], whoever asks: a typed ID sends a push to
/// that person's phone, so a stranger must not be able to keep someone's phone ringing.
const ID_BUDGET: u64 = 10;
const ID_WINDOW: Duration = Duration::from_secs(600);
/// How long a failure stays readable (the waiting page reloads to show it).
const FAILURE_LIFETIME: Duration = Duration::from_secs(120);

/// Both parts are needed: the client and the trust store that verifies its certificates
/// (`[mobile_certificate]` requires `[certificate]`).
fn enabled<'r>(req: &'r Request<'_>) -> Option<(&'r Mobile, &'r Certificates)> {
    Some((
        req.state.mobile.as_deref()?,
        req.state.certificates.as_deref()?,
    ))
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Which browser a pending sign-in belongs to.
enum Browser {
    /// The login form's CSRF cookie.
    Login { cookie: String },
    /// The binding session: its id and data.
    Bind { sid: String, s: Box<SessionData> },
}

impl Browser {
    fn purpose(&self) -> Purpose {
        match self {
            Browser::Login { .. } => Purpose::Login,
            Browser::Bind { .. } => Purpose::Bind,
        }
    }

    /// The volatile-store key of this browser's pending sign-in: a hash, so the key names
    /// neither the cookie nor the session.
    fn key(&self) -> String {
        let secret = match self {
            Browser::Login { cookie } => format!("login:{cookie}"),
            Browser::Bind { sid, .. } => format!("bind:{}", store_key(sid)),
        };
        format!("mobile:{}", hash(&secret))
    }

    fn who(&self) -> &str {
        match self {
            Browser::Login { .. } => "",
            Browser::Bind { s, .. } => &s.login_name,
        }
    }
}

/// What is kept under [`Browser::key`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Record {
    Waiting(Pending),
    Failed {
        code: String,
        until: String,
        mode: Mode,
        return_to: String,
    },
}

/// The browser of a GET (status, wait page): the login CSRF cookie, or the binding session.
async fn browser_of(req: &Request<'_>, purpose: Purpose) -> Result<Option<Browser>, Reply> {
    match purpose {
        Purpose::Login => Ok(req.cookies.csrf.value().map(|c| Browser::Login {
            cookie: c.to_string(),
        })),
        Purpose::Bind => match super::bind::binding_session(req).await {
            Ok((sid, s)) => Ok(Some(Browser::Bind {
                sid,
                s: Box::new(s),
            })),
            Err(reply) if reply.status >= 500 => Err(reply),
            Err(_) => Ok(None),
        },
    }
}

fn purpose_of(req: &Request<'_>) -> Purpose {
    req.query
        .get("purpose")
        .and_then(Purpose::parse)
        .unwrap_or(Purpose::Login)
}

/// The HTTP status of a failure shown on the form page.
fn failure_status(code: &str) -> u16 {
    match code {
        "bad_id" | "bad_mode" => 400,
        "throttled" => 429,
        "unavailable" => 503,
        "expired" | "used" | "cancelled" | "form_expired" => 410,
        "reauth_missing" | "reauth_wrong" => 401,
        _ => 403,
    }
}

fn page_mode(mode: Mode) -> MobileMode {
    match mode {
        Mode::Push => MobileMode::Push,
        Mode::Qr => MobileMode::Qr,
    }
}

/// The form page, for a login (`rd`) or for the binding session.
async fn render_form(
    req: &Request<'_>,
    browser: &Browser,
    rd: &str,
    id_number: &str,
    mode: Mode,
    failure: Option<(&str, &str)>,
) -> Reply {
    let status = failure.map_or(200, |(code, _)| failure_status(code));
    let failure = failure.map(|(code, until)| MobileFailure {
        code: code.to_owned(),
        until: until.to_owned(),
    });
    let (purpose, csrf) = match browser {
        Browser::Login { cookie } => (MobilePurpose::Login { rd }, cookie.as_str()),
        Browser::Bind { s, .. } => {
            let account = match super::bind::account_of(req, s).await {
                Ok(a) => a,
                Err(reply) => return reply,
            };
            (
                MobilePurpose::Bind {
                    display_name: &s.display_name,
                    forced: s.stage == Stage::MustBind,
                    reauth: reauth::required(s, &account),
                },
                s.csrf.as_str(),
            )
        }
    };
    let html = render_mobile(&MobilePage {
        lang: req.lang,
        site_name: req.site_name(),
        purpose,
        csrf,
        id_number,
        mode: page_mode(mode),
        failure,
    });
    Reply::html(status, html)
}

/// `GET /.menshen/mobile`: the sign-in form. Sets the login form's CSRF cookie when the
/// browser has none (the pending sign-in will be tied to it).
pub async fn page(req: &Request<'_>) -> Reply {
    if enabled(req).is_none() {
        return Reply::error(req.lang, ErrorKind::NotFound, None);
    }
    let rd = super::login::return_target(req, req.query.get("rd"));
    let (cookie, fresh) = match req.cookies.csrf.value() {
        Some(t) => (t.to_string(), false),
        None => (random::token(), true),
    };
    let mode = Mode::parse(req.query.get("mode")).unwrap_or(Mode::Push);
    let browser = Browser::Login {
        cookie: cookie.clone(),
    };
    let reply = render_form(req, &browser, &rd, "", mode, None).await;
    if fresh {
        reply.with_cookie(cookies::set(req.names.csrf, &cookie, req.names, None))
    } else {
        reply
    }
}

/// `GET /.menshen/bind/mobile`: the binding form. AA accounts are refused; without
/// `[mobile_certificate]` the binding choice is shown instead.
pub async fn bind_page(req: &Request<'_>) -> Reply {
    let (sid, s) = match super::bind::binding_session(req).await {
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
    if enabled(req).is_none() {
        return Reply::redirect(302, "/.menshen/bind");
    }
    let mode = Mode::parse(req.query.get("mode")).unwrap_or(Mode::Push);
    render_form(
        req,
        &Browser::Bind {
            sid,
            s: Box::new(s),
        },
        "",
        "",
        mode,
        None,
    )
    .await
}

/// Counts a refusal: the metric (sign-ins only) and the activity log.
async fn note_refusal(req: &Request<'_>, purpose: Purpose, who: &str, code: &str, detail: &str) {
    if purpose == Purpose::Login {
        LOGINS.with_label_values(&[METHOD, code]).inc();
    }
    activity(req, None, who, purpose.word(), METHOD, code, detail).await;
}

/// `POST /.menshen/mobile`: fields `purpose`, `csrf`, `id_number`, `mode` (`push` or `qr`),
/// for a login `rd`, for a binding from a full session the owner's proof
/// (`current_password` or `current_code`).
pub async fn start(session: &mut Session, req: &Request<'_>) -> Reply {
    let Some((mobile, _)) = enabled(req) else {
        return Reply::error(req.lang, ErrorKind::NotFound, None);
    };
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let Some(purpose) = form.get("purpose").and_then(Purpose::parse) else {
        return Reply::error(
            req.lang,
            ErrorKind::BadRequest,
            Some("purpose must be login or bind"),
        );
    };
    let typed: String = form
        .get("id_number")
        .unwrap_or("")
        .chars()
        .take(20)
        .collect();
    let mode_field = Mode::parse(form.get("mode"));
    let mode = mode_field.unwrap_or(Mode::Push);
    let rd = super::login::return_target(req, form.get("rd"));
    let browser = match purpose {
        Purpose::Login => match login_csrf(req, &form) {
            Some(cookie) => Browser::Login {
                cookie: cookie.to_string(),
            },
            None => {
                // A missing or stale cookie: a fresh form with a fresh cookie.
                let cookie = req
                    .cookies
                    .csrf
                    .value()
                    .map_or_else(random::token, str::to_string);
                let browser = Browser::Login {
                    cookie: cookie.clone(),
                };
                return render_form(req, &browser, &rd, &typed, mode, Some(("form_expired", "")))
                    .await
                    .with_cookie(cookies::set(req.names.csrf, &cookie, req.names, None));
            }
        },
        Purpose::Bind => match super::bind::binding_session(req).await {
            Ok((sid, s)) => {
                if s.roles.iter().any(|r| r == "aa") {
                    return Reply::error(
                        req.lang,
                        ErrorKind::Forbidden,
                        Some(
                            "學校管理者(AA帳號)僅提供 OTP 驗證綁定 / AA accounts can bind OTP only",
                        ),
                    );
                }
                let browser = Browser::Bind {
                    sid,
                    s: Box::new(s),
                };
                let Browser::Bind { s, .. } = &browser else {
                    unreachable!()
                };
                if !csrf_matches(&form, s) {
                    return render_form(
                        req,
                        &browser,
                        "",
                        &typed,
                        mode,
                        Some(("form_expired", "")),
                    )
                    .await;
                }
                browser
            }
            Err(reply) => return reply,
        },
    };
    let fail = |code: &'static str, until: String| {
        let browser = &browser;
        let rd = rd.as_str();
        let typed = typed.as_str();
        async move { render_form(req, browser, rd, typed, mode, Some((code, &until))).await }
    };
    if mode_field.is_none() {
        return fail("bad_mode", String::new()).await;
    }
    let Ok(id) = menshen_policies::national_id::parse(&typed) else {
        if purpose == Purpose::Login {
            LOGINS.with_label_values(&[METHOD, "bad_id"]).inc();
        }
        return fail("bad_id", String::new()).await;
    };
    // A binding from a full session: the owner's proof before any prompt reaches a phone.
    if let Browser::Bind { s, .. } = &browser {
        let account = match super::bind::account_of(req, s).await {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        match reauth::check(req, s, &account, &form, METHOD).await {
            Ok(Proof::Proven) => {}
            Ok(Proof::Missing) => return fail("reauth_missing", String::new()).await,
            Ok(Proof::Wrong) => return fail("reauth_wrong", String::new()).await,
            Ok(Proof::Locked { until }) => return fail("locked", until).await,
            Ok(Proof::Unavailable) => return fail("reauth_unavailable", String::new()).await,
            Err(_) => return super::unavailable(req.lang),
        }
    }
    let id_hashes = req
        .state
        .keyring
        .keyed_hashes(ID_HASH_CONTEXT, id.as_bytes());
    // A sign-in is an anonymous write to the shared store and a prompt on someone's phone:
    // within the address's budget, and within the ID's.
    if purpose == Purpose::Login {
        match req
            .state
            .regulation
            .admit_anonymous_write(req.client_ip)
            .await
        {
            Ok(true) => {}
            Ok(false) => return fail("throttled", String::new()).await,
            Err(_) => return super::unavailable(req.lang),
        }
    }
    match req
        .state
        .volatile
        .hit(&format!("mobid:{}", id_hashes[0]), ID_WINDOW)
        .await
    {
        Ok(n) if n <= ID_BUDGET => {}
        Ok(_) => {
            note_refusal(req, purpose, browser.who(), "throttled", "prompts per ID").await;
            return fail("throttled", String::new()).await;
        }
        Err(_) => return super::unavailable(req.lang),
    }
    let now = clock::now_secs();
    let origin = crate::sso::host_origin(&req.host, req.tls, &req.host);
    let lifetime = mobile.pending_lifetime();
    let Ok(challenge) = Challenge::new(&origin, now, lifetime.as_secs()) else {
        return super::unavailable(req.lang);
    };
    let outcome = match mode {
        Mode::Push => {
            mobile
                .client
                .request_ath_or_sign_push(&id, &challenge, None)
                .await
        }
        Mode::Qr => mobile.client.get_sp_ticket(&id, &challenge).await,
    };
    let ticket = match outcome {
        Ok(TicketOutcome::Issued(ticket)) => ticket,
        Ok(TicketOutcome::Refused(code)) => {
            let (ours, next_mode) = match code.kind {
                // Push needs a bound phone; the QR code works without one.
                Kind::NoDevice => ("no_device", Mode::Qr),
                Kind::UnknownId => ("unknown_id", mode),
                _ => {
                    tracing::warn!(code = %code.raw, "MOI refused a mobile certificate ticket");
                    ("unavailable", mode)
                }
            };
            note_refusal(req, purpose, browser.who(), ours, &code.raw).await;
            return render_form(req, &browser, &rd, &typed, next_mode, Some((ours, ""))).await;
        }
        Err(e) => {
            tracing::warn!("mobile certificate ticket request failed: {e}");
            note_refusal(req, purpose, browser.who(), "unavailable", "").await;
            return fail("unavailable", String::new()).await;
        }
    };
    let pending = Pending {
        purpose,
        account_id: match &browser {
            Browser::Bind { s, .. } => s.account_id.clone(),
            Browser::Login { .. } => String::new(),
        },
        return_to: rd.clone(),
        id_hashes,
        id_last4: menshen_policies::national_id::last_four(&id).to_owned(),
        mode,
        sp_ticket: ticket.raw,
        transaction_id: ticket.transaction_id,
        sp_ticket_id: ticket.sp_ticket_id,
        ticket_hashed_id: ticket.hashed_id_num,
        tbs: STANDARD.encode(challenge.tbs()),
        deadline: now + lifetime.as_secs(),
        last_poll_failed: false,
    };
    if put(req, &browser.key(), &Record::Waiting(pending), lifetime)
        .await
        .is_err()
    {
        return super::unavailable(req.lang);
    }
    Reply::redirect(
        303,
        &format!("/.menshen/mobile/wait?purpose={}", purpose.word()),
    )
}

/// The login form's CSRF cookie, when the form's `csrf` field matches it (double submit).
fn login_csrf<'r>(req: &'r Request<'_>, form: &Form) -> Option<&'r str> {
    let sent = form.get("csrf").unwrap_or("");
    req.cookies
        .csrf
        .value()
        .filter(|c| bool::from(c.as_bytes().ct_eq(sent.as_bytes())))
}

async fn put(req: &Request<'_>, key: &str, record: &Record, ttl: Duration) -> Result<(), ()> {
    let bytes = serde_json::to_vec(record).map_err(|_| ())?;
    req.state
        .volatile
        .put(key, &bytes, ttl)
        .await
        .map_err(|_| ())
}

/// Where a pending sign-in stands after (at most) one question to MOI.
enum Advance {
    Waiting(Pending),
    Done {
        next: String,
        cookie: String,
    },
    Failed {
        code: String,
        until: String,
        mode: Mode,
        return_to: String,
    },
    /// Nothing pending for this browser (never started, cancelled, or long gone).
    Nothing,
}

/// Moves this browser's pending sign-in on: asks MOI when it is time to, verifies a result,
/// completes the login or binding. `Err` when the store cannot answer.
async fn advance(req: &Request<'_>, browser: &Browser) -> Result<Advance, ()> {
    let Some((mobile, certificates)) = enabled(req) else {
        return Ok(Advance::Nothing);
    };
    let key = browser.key();
    let raw = req.state.volatile.get(&key).await.map_err(|_| ())?;
    let Some(record) = raw.and_then(|b| serde_json::from_slice::<Record>(&b).ok()) else {
        return Ok(Advance::Nothing);
    };
    let mut p = match record {
        Record::Failed {
            code,
            until,
            mode,
            return_to,
        } => {
            return Ok(Advance::Failed {
                code,
                until,
                mode,
                return_to,
            });
        }
        Record::Waiting(p) if p.purpose != browser.purpose() => return Ok(Advance::Nothing),
        Record::Waiting(p) => p,
    };
    let now = clock::now_secs();
    if now > p.deadline {
        let code = if p.last_poll_failed {
            "unavailable"
        } else {
            "expired"
        };
        return fail(req, browser, &key, &p, code, "", String::new()).await;
    }
    // One question to MOI per sign-in per interval, however often the page asks.
    let gate = format!("mobpoll:{}", key.trim_start_matches("mobile:"));
    let asked = req
        .state
        .volatile
        .hit(&gate, menshen_twfido::client::MIN_POLL_INTERVAL)
        .await
        .map_err(|_| ())?;
    if asked > 1 {
        return Ok(Advance::Waiting(p));
    }
    let outcome = mobile.client.get_ath_or_sign_result(&p.ticket()).await;
    let (code, detail) = match outcome {
        Ok(ResultOutcome::Pending) => {
            if p.last_poll_failed {
                p.last_poll_failed = false;
                let left = Duration::from_secs(p.deadline.saturating_sub(now).max(1));
                put(req, &key, &Record::Waiting(p.clone()), left).await?;
            }
            return Ok(Advance::Waiting(p));
        }
        Ok(ResultOutcome::Done(signed)) => {
            // One use: of two polls that both saw the result, only the one that takes the
            // pending sign-in goes on.
            if req
                .state
                .volatile
                .take(&key)
                .await
                .map_err(|_| ())?
                .is_none()
            {
                return Ok(Advance::Nothing);
            }
            return finish(req, certificates, browser, &key, &p, &signed).await;
        }
        Ok(ResultOutcome::Declined(c)) => ("declined", c.raw),
        Ok(ResultOutcome::Expired(c)) => ("expired", c.map(|c| c.raw).unwrap_or_default()),
        Ok(ResultOutcome::UnknownTicket(c)) => ("expired", c.raw),
        Ok(ResultOutcome::Used(c)) => ("used", c.raw),
        Ok(ResultOutcome::UnknownId(c)) => ("unknown_id", c.raw),
        Ok(ResultOutcome::NoDevice(c)) => ("no_device", c.raw),
        Ok(
            ResultOutcome::Rejected(c) | ResultOutcome::Unavailable(c) | ResultOutcome::Other(c),
        ) => {
            tracing::warn!(code = %c.raw, "MOI refused a mobile certificate result query");
            ("unavailable", c.raw)
        }
        Err(e) if e.is_transient() => {
            // The app or MOI may be slow for a moment: keep waiting until the deadline.
            tracing::debug!("mobile certificate poll failed, will retry: {e}");
            p.last_poll_failed = true;
            let left = Duration::from_secs(p.deadline.saturating_sub(now).max(1));
            put(req, &key, &Record::Waiting(p.clone()), left).await?;
            return Ok(Advance::Waiting(p));
        }
        Err(e @ (menshen_twfido::Error::Checksum | menshen_twfido::Error::Malformed(_))) => {
            tracing::warn!(ip = ?req.client_ip, "mobile certificate result refused: {e}");
            ("invalid_result", e.to_string())
        }
        Err(e) => {
            tracing::warn!("mobile certificate poll failed: {e}");
            ("unavailable", String::new())
        }
    };
    fail(req, browser, &key, &p, code, &detail, String::new()).await
}

/// Records a failure where the browser will read it, in the metrics and in the activity log.
async fn fail(
    req: &Request<'_>,
    browser: &Browser,
    key: &str,
    p: &Pending,
    code: &str,
    detail: &str,
    until: String,
) -> Result<Advance, ()> {
    note_refusal(req, p.purpose, browser.who(), code, detail).await;
    let record = Record::Failed {
        code: code.to_owned(),
        until: until.clone(),
        mode: p.mode,
        return_to: p.return_to.clone(),
    };
    put(req, key, &record, FAILURE_LIFETIME).await?;
    Ok(Advance::Failed {
        code: code.to_owned(),
        until,
        mode: p.mode,
        return_to: p.return_to.clone(),
    })
}

/// What a rejected certificate or signature is called on the pages.
fn rejection_code(r: &Rejection) -> &'static str {
    match r {
        Rejection::Revoked => "revoked",
        Rejection::UntrustedIssuer
        | Rejection::Expired
        | Rejection::NotYetValid
        | Rejection::WrongKeyUsage
        | Rejection::PolicyMissing
        | Rejection::IssuerExpired
        | Rejection::NotEndEntity
        | Rejection::UnsupportedCriticalExtension(_) => "untrusted",
        Rejection::Malformed(_)
        | Rejection::NotRsa
        | Rejection::ChallengeMismatch
        | Rejection::BadSignature => "invalid_result",
    }
}

/// Verifies MOI's answer for `p` and completes the sign-in or binding.
async fn finish(
    req: &Request<'_>,
    certificates: &Certificates,
    browser: &Browser,
    key: &str,
    p: &Pending,
    signed: &Signed,
) -> Result<Advance, ()> {
    let refuse = |code: &'static str, detail: String| async move {
        fail(req, browser, key, p, code, &detail, String::new()).await
    };
    // The answer must be for the ID the ticket was issued to.
    if let Some(announced) = &p.ticket_hashed_id
        && !announced.eq_ignore_ascii_case(&signed.hashed_id_num)
    {
        return refuse(
            "id_mismatch",
            "hashed_id_num differs from the ticket's".into(),
        )
        .await;
    }
    let Some(certificate_der) = &signed.certificate else {
        return refuse("invalid_result", "no certificate in the result".into()).await;
    };
    let Ok(tbs) = STANDARD.decode(&p.tbs) else {
        return refuse("invalid_result", "challenge lost".into()).await;
    };
    let policy = super::certificate::policy(certificates);
    let revoked = certificates.revoked();
    let verified = match menshen_pki::verify(
        &SignedChallenge::Pkcs1 {
            signature: &signed.signature,
            certificate_der,
        },
        &tbs,
        &certificates.trust,
        &revoked,
        &policy,
    ) {
        Ok(v) => v,
        Err(rejection) => {
            let detail: String = rejection.to_string().chars().take(200).collect();
            tracing::info!(ip = ?req.client_ip, "mobile certificate refused: {rejection}");
            return refuse(rejection_code(&rejection), detail).await;
        }
    };
    if let Some((_, code, detail)) =
        super::certificate::revocation_verdict(certificates, p.purpose.word(), &verified, &policy)
            .await
    {
        tracing::warn!(ip = ?req.client_ip, "mobile certificate refused: {detail}");
        return refuse(code, detail).await;
    }
    if let Some((code, detail)) =
        super::certificate::ocsp_verdict(certificates, p.purpose.word(), &verified, &policy).await
    {
        let code = if code == "revoked" {
            "revoked"
        } else {
            "unavailable"
        };
        return refuse(code, detail).await;
    }
    // MOICA certificates carry the ID's last four; they must be the typed ID's.
    if let Some(last4) = &verified.id_last4
        && !bool::from(last4.as_bytes().ct_eq(p.id_last4.as_bytes()))
    {
        return refuse(
            "id_mismatch",
            format!("serial {}: ID last four differ", verified.serial_hex),
        )
        .await;
    }
    match browser {
        Browser::Bind { s, .. } if s.account_id == p.account_id => {
            bind(req, certificates, browser, key, p, &verified).await
        }
        Browser::Bind { .. } => refuse("invalid_result", "session changed".into()).await,
        Browser::Login { .. } => login(req, certificates, browser, key, p, &verified).await,
    }
}

async fn bind(
    req: &Request<'_>,
    certificates: &Certificates,
    browser: &Browser,
    key: &str,
    p: &Pending,
    v: &VerifiedCertificate,
) -> Result<Advance, ()> {
    let store = req.state.accounts().await.map_err(|_| ())?;
    let Some(account) = store.find_by_id(&p.account_id).await.map_err(|_| ())? else {
        return Ok(Advance::Nothing);
    };
    let refuse = |code: &'static str| async move {
        fail(req, browser, key, p, code, "", String::new()).await
    };
    if account.is_aa() {
        return refuse("aa_not_allowed").await;
    }
    if !super::certificate::identity_matches(certificates, &account, v) {
        return refuse("identity_mismatch").await;
    }
    let Some((primary, older)) = p.id_hashes.split_first() else {
        return refuse("invalid_result").await;
    };
    let binding = MobileBinding {
        id_hash: primary.clone(),
        issuer: v.issuer.clone(),
        issuer_key_id: v.issuer_key_id_hex.clone(),
        serial_hex: v.serial_hex.clone(),
        subject_name: v.subject_cn.clone(),
        id_last4: p.id_last4.clone(),
    };
    match store
        .bind_mobile(&account.id, &binding, older, clock::now_secs() as i64)
        .await
    {
        Ok(MobileBindOutcome::Bound) => {}
        Ok(MobileBindOutcome::Conflict) => return refuse("already_bound").await,
        Err(e) => {
            tracing::error!("mobile certificate binding not stored: {e:#}");
            return Err(());
        }
    }
    let detail = format!("serial {}", v.serial_hex);
    activity(req, Some(&account), "", "bind", METHOD, "success", &detail).await;
    super::notices::send(
        req,
        &account,
        menshen_pages::NoticeMail::FactorBound {
            method: req.lang.mobile_texts().login_button,
        },
    )
    .await;
    // All the account's sessions end; the person signs in again with the new method.
    req.state
        .sessions
        .destroy_account(&account.id)
        .await
        .map_err(|_| ())?;
    tracing::info!(user = %account.login_name, "mobile certificate bound");
    Ok(Advance::Done {
        next: "/.menshen/login?bound=1".into(),
        cookie: cookies::clear(req.names.session, req.names),
    })
}

async fn login(
    req: &Request<'_>,
    certificates: &Certificates,
    browser: &Browser,
    key: &str,
    p: &Pending,
    v: &VerifiedCertificate,
) -> Result<Advance, ()> {
    let store = req.state.accounts().await.map_err(|_| ())?;
    let Some((account_id, stored_hash)) = store
        .account_by_mobile_id(&p.id_hashes)
        .await
        .map_err(|_| ())?
    else {
        let detail = format!("serial {}", v.serial_hex);
        return fail(req, browser, key, p, "not_bound", &detail, String::new()).await;
    };
    let Some(account) = store.find_by_id(&account_id).await.map_err(|_| ())? else {
        return fail(req, browser, key, p, "not_bound", "", String::new()).await;
    };
    let refuse = |code: &'static str, until: String| {
        let account = &account;
        async move {
            LOGINS.with_label_values(&[METHOD, code]).inc();
            activity(req, Some(account), "", "login", METHOD, code, "").await;
            let record = Record::Failed {
                code: code.to_owned(),
                until: until.clone(),
                mode: p.mode,
                return_to: p.return_to.clone(),
            };
            put(req, key, &record, FAILURE_LIFETIME).await?;
            Ok(Advance::Failed {
                code: code.to_owned(),
                until,
                mode: p.mode,
                return_to: p.return_to.clone(),
            })
        }
    };
    if !account.enabled || req.state.watch.is_disabled(&account.id) {
        return refuse("account_disabled", String::new()).await;
    }
    if account.is_aa() {
        return refuse("aa_not_allowed", String::new()).await;
    }
    if !super::certificate::identity_matches(certificates, &account, v) {
        return refuse("identity_mismatch", String::new()).await;
    }
    // A suspension after wrong passwords or codes holds for every method.
    let now = clock::now_secs();
    match req
        .state
        .regulation
        .suspended_until(&account.login_name, account.unlocked_at.max(0) as u64, now)
        .await
    {
        Ok(None) => {}
        Ok(Some(until)) => return refuse("locked", taipei_clock(until)).await,
        Err(_) => return Err(()),
    }
    let sid = super::certificate::full_session(
        req,
        &account,
        Factor::MobileCertificate,
        METHOD,
        &p.return_to,
        now,
    )
    .await?;
    let detail = format!("serial {}", v.serial_hex);
    if !activity(req, Some(&account), "", "login", METHOD, "success", &detail).await {
        let _ = req.state.sessions.destroy(&sid).await;
        return Err(());
    }
    // A binding found under an older key moves to the primary key's hash.
    if let Some(primary) = p.id_hashes.first()
        && *primary != stored_hash
        && let Err(e) = store.rehash_mobile(&account.id, primary).await
    {
        tracing::warn!("mobile binding not re-hashed: {e:#}");
    }
    LOGINS.with_label_values(&[METHOD, "success"]).inc();
    tracing::info!(user = %account.login_name, ip = ?req.client_ip, "mobile certificate login");
    Ok(Advance::Done {
        next: crate::sso::landing(&p.return_to),
        cookie: cookies::set(req.names.session, &sid, req.names, None),
    })
}

fn json(status: u16, value: &serde_json::Value) -> Reply {
    Reply {
        status,
        content_type: "application/json; charset=utf-8",
        body: Bytes::from(value.to_string()),
        headers: Vec::new(),
        named_headers: Vec::new(),
        cacheable: false,
    }
}

fn failed_json(req: &Request<'_>, status: u16, code: &str, until: &str) -> Reply {
    let message = req.lang.mobile_texts().failure(code, until);
    json(
        status,
        &json!({ "state": "failed", "error": code, "message": message }),
    )
}

/// `GET /.menshen/mobile/status?purpose=login|bind`: where this browser's sign-in stands.
pub async fn status(req: &Request<'_>) -> Reply {
    if enabled(req).is_none() {
        return json(404, &json!({ "state": "failed", "error": "disabled" }));
    }
    let browser = match browser_of(req, purpose_of(req)).await {
        Ok(Some(b)) => b,
        Ok(None) => return failed_json(req, 200, "expired", ""),
        Err(_) => return failed_json(req, 503, "unavailable", ""),
    };
    match advance(req, &browser).await {
        Ok(Advance::Waiting(p)) => json(
            200,
            &json!({
                "state": "pending",
                "seconds_left": seconds_left(&p),
            }),
        ),
        Ok(Advance::Done { next, cookie }) => {
            json(200, &json!({ "state": "done", "next": next })).with_cookie(cookie)
        }
        Ok(Advance::Failed { code, until, .. }) => failed_json(req, 200, &code, &until),
        Ok(Advance::Nothing) => failed_json(req, 200, "expired", ""),
        Err(()) => failed_json(req, 503, "unavailable", ""),
    }
}

/// Seconds of the ticket's life left (what the page counts down).
fn seconds_left(p: &Pending) -> u64 {
    let slack = menshen_twfido::client::DEADLINE_SLACK.as_secs();
    p.deadline
        .saturating_sub(slack)
        .saturating_sub(clock::now_secs())
}

/// `GET /.menshen/mobile/wait?purpose=…`: the waiting page while pending; the next page when
/// done (so it works without the script: its 繼續 link reloads it); the form with the
/// failure's sentence when it failed.
pub async fn wait(req: &Request<'_>) -> Reply {
    if enabled(req).is_none() {
        return Reply::error(req.lang, ErrorKind::NotFound, None);
    }
    let purpose = purpose_of(req);
    let browser = match browser_of(req, purpose).await {
        Ok(Some(b)) => b,
        Ok(None) if purpose == Purpose::Bind => return Reply::redirect(302, "/.menshen/login"),
        Ok(None) => return Reply::redirect(302, "/.menshen/mobile"),
        Err(reply) => return reply,
    };
    match advance(req, &browser).await {
        Ok(Advance::Waiting(p)) => {
            let qr = match p.mode {
                Mode::Qr => match menshen_otp::qr::svg_data_uri(&p.sp_ticket) {
                    Ok(uri) => Some(uri),
                    Err(_) => return super::unavailable(req.lang),
                },
                Mode::Push => None,
            };
            let csrf = match &browser {
                Browser::Login { cookie } => cookie.as_str(),
                Browser::Bind { s, .. } => s.csrf.as_str(),
            };
            let masked = format!("******{}", p.id_last4);
            let html = render_mobile_wait(&MobileWaitPage {
                lang: req.lang,
                site_name: req.site_name(),
                purpose: p.purpose.word(),
                mode: page_mode(p.mode),
                qr_data_uri: qr.as_deref(),
                seconds_left: seconds_left(&p),
                csrf,
                masked_id: &masked,
            });
            Reply::html(200, html)
        }
        Ok(Advance::Done { next, cookie }) => Reply::redirect(303, &next).with_cookie(cookie),
        Ok(Advance::Failed {
            code,
            until,
            mode,
            return_to,
        }) => {
            let mode = if code == "no_device" { Mode::Qr } else { mode };
            render_form(req, &browser, &return_to, "", mode, Some((&code, &until))).await
        }
        Ok(Advance::Nothing) => {
            render_form(req, &browser, "/", "", Mode::Push, Some(("expired", ""))).await
        }
        Err(()) => super::unavailable(req.lang),
    }
}

/// `POST /.menshen/mobile/cancel` (`csrf`, `purpose`): forgets this browser's pending
/// sign-in and shows the form again. MOI has no call to withdraw a ticket; an approval
/// after this finds nothing to complete.
pub async fn cancel(session: &mut Session, req: &Request<'_>) -> Reply {
    if enabled(req).is_none() {
        return Reply::error(req.lang, ErrorKind::NotFound, None);
    }
    let form = match super::read_form(session, req.lang).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let purpose = form
        .get("purpose")
        .and_then(Purpose::parse)
        .unwrap_or(Purpose::Login);
    let browser = match purpose {
        Purpose::Login => match login_csrf(req, &form) {
            Some(c) => Browser::Login {
                cookie: c.to_string(),
            },
            None => return Reply::redirect(303, "/.menshen/mobile"),
        },
        Purpose::Bind => match super::bind::binding_session(req).await {
            Ok((sid, s)) if csrf_matches(&form, &s) => Browser::Bind {
                sid,
                s: Box::new(s),
            },
            Ok(_) => return Reply::redirect(303, "/.menshen/bind/mobile"),
            Err(reply) => return reply,
        },
    };
    let key = browser.key();
    let return_to = match req.state.volatile.take(&key).await {
        Ok(Some(raw)) => match serde_json::from_slice::<Record>(&raw) {
            Ok(Record::Waiting(p)) => {
                note_refusal(req, purpose, browser.who(), "cancelled", "").await;
                p.return_to
            }
            Ok(Record::Failed { return_to, .. }) => return_to,
            Err(_) => "/".into(),
        },
        Ok(None) => "/".into(),
        Err(_) => return super::unavailable(req.lang),
    };
    match purpose {
        Purpose::Login => Reply::redirect(
            303,
            &format!(
                "/.menshen/mobile?rd={}",
                super::encode_query_value(&return_to)
            ),
        ),
        Purpose::Bind => Reply::redirect(303, "/.menshen/bind/mobile"),
    }
}

/// The binding table's and the account settings' mobile row: none without the method; for
/// AA accounts a note (OTP only); else binding, or re-binding once bound.
pub fn mobile_row(
    req: &Request<'_>,
    account: &Account,
) -> Option<menshen_pages::CertificateRow<'static>> {
    use menshen_pages::CertificateRow;
    enabled(req)?;
    Some(if account.is_aa() {
        CertificateRow::NotForAa
    } else if account.mobile_bound {
        CertificateRow::Rebindable {
            href: "/.menshen/bind/mobile",
        }
    } else {
        CertificateRow::Available {
            href: "/.menshen/bind/mobile",
        }
    })
}
