//! The JSON endpoints of citizen digital certificate (自然人憑證) binding and login:
//! `POST /.menshen/certificate/challenge` and `POST /.menshen/certificate/verify`.
//!
//! The page asks for a challenge, hands it to the HiPKI Local Sign Server component (the
//! card signs it after the PIN), and posts the signature back. A challenge is random, kept
//! server-side for two minutes, single-use, and bound to the browser that asked for it: to
//! the session for a binding (a staff account's session that must bind or is signed in; AA
//! accounts bind OTP only), to the login form's CSRF cookie for a login. Every refusal is a
//! distinct JSON error code and an activity record; a binding ends the account's sessions
//! (the user logs in again with the card), a login creates a fully authenticated session
//! that reaches the app as `certificate`. With `certificate.ocsp` on, a card that passed
//! every other check is also put to the CA's OCSP responder before it binds or logs in.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use menshen_config::OcspMode;
use menshen_pages::{
    CertificatePage, CertificatePurpose, DEFAULT_DOWNLOAD_URL, ErrorKind, render_certificate,
};
use menshen_pki::{Policy, Rejection, RevocationStatus, SignedChallenge, VerifiedCertificate};
use pingora::proxy::Session;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::reauth::{self, Proof};
use super::{Request, activity, csrf_matches};
use crate::accounts::{Account, CertificateBindOutcome, CertificateBinding};
use crate::certificates::{Certificates, OcspOutcome};
use crate::forms::{self, Form, FormError};
use crate::metrics::LOGINS;
use crate::regulation::taipei_clock;
use crate::respond::{Reply, csp_with_component};
use crate::sessions::{Factor, SessionData, Stage, store_key};
use crate::{clock, cookies, random};

/// Renders a certificate page (binding or sign-in) with the policy that lets it reach the
/// component; `csrf` is what the JSON endpoints will expect.
pub fn render_page(
    req: &Request<'_>,
    certificates: &Certificates,
    purpose: CertificatePurpose<'_>,
    csrf: &str,
) -> Reply {
    let config = &certificates.config;
    let html = render_certificate(&CertificatePage {
        lang: req.lang,
        site_name: req.site_name(),
        purpose,
        csrf,
        component_url: &config.component_url,
        component_min_version: &config.component_min_version,
        download_url: config
            .component_download_url
            .as_deref()
            .unwrap_or(DEFAULT_DOWNLOAD_URL),
    });
    Reply::html(200, html).with_header(
        "Content-Security-Policy",
        csp_with_component(&req.state.csp, &config.component_url),
    )
}

/// `GET /.menshen/certificate`: signing in with a bound card (the login page's
/// 【自然人憑證登入】). The challenge is tied to the login form's CSRF cookie, set here when
/// the browser has none yet.
pub async fn page(req: &Request<'_>) -> Reply {
    let Some(certificates) = req.state.certificates.as_deref() else {
        return Reply::error(req.lang, ErrorKind::NotFound, None);
    };
    let rd = super::login::return_target(req, req.query.get("rd"));
    let rd = rd.as_str();
    let (csrf, fresh) = match req.cookies.csrf.value() {
        Some(t) => (t.to_string(), false),
        None => (random::token(), true),
    };
    let reply = render_page(req, certificates, CertificatePurpose::Login { rd }, &csrf);
    if fresh {
        reply.with_cookie(cookies::set(req.names.csrf, &csrf, req.names, None))
    } else {
        reply
    }
}

/// How long a challenge waits for its signature.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(120);
const METHOD: &str = "certificate";

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    Login,
    Bind,
}

impl Purpose {
    fn word(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Bind => "bind",
        }
    }
}

/// A challenge as held server-side.
#[derive(Serialize, Deserialize)]
struct Challenge {
    purpose: Purpose,
    /// SHA-256 of the CSRF cookie (login) or the session's store key (bind).
    browser: String,
    /// The exact bytes the card must sign (ASCII).
    tbs: String,
    /// Bind: the account whose session asked.
    account_id: String,
    /// Login: where to go afterwards (a validated local path).
    return_to: String,
}

fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn challenge_key(id: &str) -> String {
    format!("certch:{}", hash(id))
}

/// A JSON answer.
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

fn error(status: u16, code: &str) -> Reply {
    json(status, &json!({ "error": code }))
}

fn unavailable() -> Reply {
    error(503, "unavailable").with_header("Retry-After", "30".into())
}

/// The verify form carries a CMS signature with certificates in base64: larger than the
/// other forms (a MOICA card certificate is about 1.5 KiB; the component may add the CA's).
const FORM_LIMIT: usize = 32 * 1024;

/// Reads a urlencoded form of at most [`FORM_LIMIT`] bytes; the refusal is JSON.
async fn read_form(session: &mut Session) -> Result<Form, Reply> {
    let header = session.req_header();
    let essence = header
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(error(400, "bad_form"));
    }
    if header
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > FORM_LIMIT)
    {
        return Err(error(413, "too_large"));
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > FORM_LIMIT {
                    return Err(error(413, "too_large"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err(error(400, "bad_form")),
        }
    }
    forms::parse(&body).map_err(|e| match e {
        FormError::TooLarge => error(413, "too_large"),
        _ => error(400, "bad_form"),
    })
}

fn enabled<'r>(req: &'r Request<'_>) -> Result<&'r Certificates, Reply> {
    req.state
        .certificates
        .as_deref()
        .ok_or_else(|| error(404, "certificate_disabled"))
}

/// The login form's CSRF cookie, when the form's `csrf` field matches it (double submit).
fn login_csrf<'r>(req: &'r Request<'_>, form: &Form) -> Option<&'r str> {
    let sent = form.get("csrf").unwrap_or("");
    req.cookies
        .csrf
        .value()
        .filter(|c| bool::from(c.as_bytes().ct_eq(sent.as_bytes())))
}

/// The session allowed to bind a certificate, or the JSON refusal.
async fn binding_session(req: &Request<'_>, form: &Form) -> Result<(String, SessionData), Reply> {
    let (sid, s) = super::session_of(req, error(401, "no_session"))
        .await
        .map_err(|r| if r.status == 401 { r } else { unavailable() })?;
    match s.stage {
        Stage::MustBind => {}
        // As for OTP: a session left open (or stolen) cannot bind another card.
        Stage::Authenticated if super::bind::recent_login(&s) => {}
        _ => return Err(error(401, "no_session")),
    }
    if !csrf_matches(form, &s) {
        return Err(error(403, "csrf"));
    }
    if s.roles.iter().any(|r| r == "aa") {
        return Err(error(403, "aa_not_allowed"));
    }
    Ok((sid, s))
}

/// The JSON refusal when a binding session does not prove its owner (`None`: proven, or the
/// forced first binding).
async fn bind_proof_refusal(req: &Request<'_>, s: &SessionData, form: &Form) -> Option<Reply> {
    let account = match load_account(req, &s.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Some(error(401, "no_session")),
        Err(reply) => return Some(reply),
    };
    match reauth::check(req, s, &account, form, METHOD).await {
        Ok(Proof::Proven) => None,
        Ok(Proof::Missing) => Some(error(401, "reauth_missing")),
        Ok(Proof::Wrong) => Some(error(401, "reauth_wrong")),
        Ok(Proof::Locked { until }) => {
            Some(json(403, &json!({ "error": "locked", "until": until })))
        }
        Ok(Proof::Unavailable) => Some(error(403, "reauth_unavailable")),
        Err(_) => Some(unavailable()),
    }
}

/// `POST /.menshen/certificate/challenge`: fields `purpose` (`bind` or `login`), `csrf`, and
/// for a login the return target `rd`; a binding from a signed-in session also carries the
/// owner's proof, `current_password` (or `current_code`), checked before the card signs.
pub async fn challenge(session: &mut Session, req: &Request<'_>) -> Reply {
    if let Err(reply) = enabled(req) {
        return reply;
    }
    let form = match read_form(session).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    // A login challenge is an anonymous write to the shared store: within the address's
    // budget, so a loop cannot fill Redis.
    if form.get("purpose") == Some("login") {
        match req
            .state
            .regulation
            .admit_anonymous_write(req.client_ip)
            .await
        {
            Ok(true) => {}
            Ok(false) => return error(429, "throttled").with_header("Retry-After", "60".into()),
            Err(_) => return unavailable(),
        }
    }
    let (purpose, browser, account_id, return_to) = match form.get("purpose") {
        Some("bind") => match binding_session(req, &form).await {
            Ok((sid, s)) => {
                // The owner's proof before the card is asked to sign: the challenge is only
                // issued to a session that has just shown it (see `reauth`).
                if let Some(refusal) = bind_proof_refusal(req, &s, &form).await {
                    return refusal;
                }
                (
                    Purpose::Bind,
                    hash(&store_key(&sid)),
                    s.account_id,
                    String::new(),
                )
            }
            Err(reply) => return reply,
        },
        Some("login") => match login_csrf(req, &form) {
            Some(cookie) => (
                Purpose::Login,
                hash(cookie),
                String::new(),
                super::login::return_target(req, form.get("rd")),
            ),
            None => return error(403, "csrf"),
        },
        _ => return error(400, "bad_purpose"),
    };
    let id = random::token();
    let tbs = format!("menshen-{}:{}", purpose.word(), random::token());
    let stored = Challenge {
        purpose,
        browser,
        tbs: tbs.clone(),
        account_id,
        return_to,
    };
    let Ok(bytes) = serde_json::to_vec(&stored) else {
        return unavailable();
    };
    if req
        .state
        .volatile
        .put(&challenge_key(&id), &bytes, CHALLENGE_LIFETIME)
        .await
        .is_err()
    {
        return unavailable();
    }
    json(
        200,
        &json!({
            "challenge_id": id,
            "tbs": STANDARD.encode(tbs.as_bytes()),
            "tbs_encoding": "base64",
            "expires_in": CHALLENGE_LIFETIME.as_secs(),
        }),
    )
}

/// The JSON error code and status of each rejection.
fn rejection_answer(r: &Rejection) -> (u16, &'static str) {
    match r {
        Rejection::Malformed(_) => (400, "malformed"),
        Rejection::NotRsa => (400, "not_rsa"),
        Rejection::ChallengeMismatch => (401, "challenge_mismatch"),
        Rejection::BadSignature => (401, "bad_signature"),
        Rejection::UntrustedIssuer => (403, "untrusted_issuer"),
        Rejection::Expired => (403, "expired"),
        Rejection::NotYetValid => (403, "not_yet_valid"),
        Rejection::WrongKeyUsage => (403, "wrong_key_usage"),
        Rejection::PolicyMissing => (403, "policy_missing"),
        Rejection::Revoked => (403, "revoked"),
        Rejection::IssuerExpired => (403, "issuer_expired"),
        Rejection::NotEndEntity => (403, "not_end_entity"),
        Rejection::UnsupportedCriticalExtension(_) => (403, "unsupported_extension"),
    }
}

/// Base64 as the component sends it (standard alphabet; line breaks and spaces ignored).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    STANDARD.decode(compact.as_bytes()).ok()
}

/// `POST /.menshen/certificate/verify`: fields `csrf`, `challenge_id`, `signature_type`
/// (`PKCS7` or `PKCS1`), `signature` (base64) and, for PKCS1, `certb64` (base64 DER).
pub async fn verify(session: &mut Session, req: &Request<'_>) -> Reply {
    verify_for(session, req, None).await
}

/// `POST /.menshen/bind/certificate` (the public contract's binding endpoint): the same form
/// as [`verify`], for binding challenges only.
pub async fn verify_binding(session: &mut Session, req: &Request<'_>) -> Reply {
    verify_for(session, req, Some(Purpose::Bind)).await
}

async fn verify_for(session: &mut Session, req: &Request<'_>, only: Option<Purpose>) -> Reply {
    let certificates = match enabled(req) {
        Ok(c) => c,
        Err(reply) => return reply,
    };
    let form = match read_form(session).await {
        Ok(f) => f,
        Err(reply) => return reply,
    };
    let id = form.get("challenge_id").unwrap_or("");
    if !random::is_token(id) {
        return error(400, "challenge_expired");
    }
    // Read first, and take (single use) only once the caller is known to be the browser that
    // asked for it: otherwise anyone who saw a challenge id could burn another browser's.
    let key = challenge_key(id);
    let stored: Option<Challenge> = match req.state.volatile.get(&key).await {
        Ok(raw) => raw.and_then(|b| serde_json::from_slice(&b).ok()),
        Err(_) => return unavailable(),
    };
    let Some(ch) = stored else {
        LOGINS
            .with_label_values(&[METHOD, "challenge_expired"])
            .inc();
        return error(400, "challenge_expired");
    };
    if only.is_some_and(|p| p != ch.purpose) {
        return error(400, "bad_purpose");
    }
    // The browser that asked for the challenge, and a matching CSRF token.
    let bind_session = match ch.purpose {
        Purpose::Login => match login_csrf(req, &form) {
            Some(c) if hash(c) == ch.browser => None,
            Some(_) => return error(403, "challenge_not_yours"),
            None => return error(403, "csrf"),
        },
        Purpose::Bind => match binding_session(req, &form).await {
            Ok((sid, s))
                if hash(&store_key(&sid)) == ch.browser && s.account_id == ch.account_id =>
            {
                Some(s)
            }
            Ok(_) => return error(403, "challenge_not_yours"),
            Err(reply) if reply.status == 401 => return error(403, "challenge_not_yours"),
            Err(reply) => return reply,
        },
    };
    // Single use: whatever happens next, this challenge is gone; of two racing submits only
    // the one that takes it goes on.
    match req.state.volatile.take(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            LOGINS
                .with_label_values(&[METHOD, "challenge_expired"])
                .inc();
            return error(400, "challenge_expired");
        }
        Err(_) => return unavailable(),
    }
    let who = bind_session
        .as_ref()
        .map(|s| s.login_name.clone())
        .unwrap_or_default();
    let signature = form.get("signature").and_then(decode_base64);
    let certificate = form.get("certb64").and_then(decode_base64);
    let signed = match (form.get("signature_type"), &signature, &certificate) {
        (Some("PKCS7"), Some(cms_der), _) => SignedChallenge::Pkcs7 { cms_der },
        (Some("PKCS1"), Some(signature), Some(certificate_der)) => SignedChallenge::Pkcs1 {
            signature,
            certificate_der,
        },
        _ => {
            activity(req, None, &who, ch.purpose.word(), METHOD, "malformed", "").await;
            return error(400, "malformed");
        }
    };
    let policy = policy(certificates);
    let revoked = certificates.revoked();
    let verified = match menshen_pki::verify(
        &signed,
        ch.tbs.as_bytes(),
        &certificates.trust,
        &revoked,
        &policy,
    ) {
        Ok(v) => v,
        Err(rejection) => {
            let (status, code) = rejection_answer(&rejection);
            if ch.purpose == Purpose::Login {
                LOGINS.with_label_values(&[METHOD, code]).inc();
            }
            let detail: String = rejection.to_string().chars().take(200).collect();
            activity(req, None, &who, ch.purpose.word(), METHOD, code, &detail).await;
            tracing::info!(purpose = ch.purpose.word(), ip = ?req.client_ip, "certificate refused: {rejection}");
            return error(status, code);
        }
    };
    if let Some((status, code, detail)) =
        revocation_verdict(certificates, ch.purpose.word(), &verified, &policy).await
    {
        if ch.purpose == Purpose::Login {
            LOGINS.with_label_values(&[METHOD, code]).inc();
        }
        activity(req, None, &who, ch.purpose.word(), METHOD, code, &detail).await;
        tracing::warn!(purpose = ch.purpose.word(), ip = ?req.client_ip, "certificate refused: {detail}");
        return error(status, code);
    }
    if let Some(reply) = ocsp_refusal(req, certificates, ch.purpose, &who, &verified, &policy).await
    {
        return reply;
    }
    match bind_session {
        Some(s) => bind(req, certificates, &s, &verified).await,
        None => login(req, certificates, &ch, &verified).await,
    }
}

/// The verification policy now: required policies and `certificate.crl_grace`. Shared by
/// the card and the mobile certificate.
pub(super) fn policy(certificates: &Certificates) -> Policy {
    let at = certificates.freshness();
    Policy {
        now_unix: at.now_unix,
        required_policy_oids: certificates.config.required_policies.clone(),
        crl_grace_secs: at.grace_secs,
    }
}

/// What the CRLs' coverage says of a verified certificate: `None` when current CRLs spoke
/// for the whole path, else the refusal (status, code, detail for the activity log). Fail
/// closed: without a current list of the card's CA, only a good OCSP answer about the card
/// (asked whatever `certificate.ocsp` says) lets it through; without one of a CA's issuer
/// (the root's ARL) nothing does. A `revoked` OCSP answer refuses as a listing would.
pub(super) async fn revocation_verdict(
    certificates: &Certificates,
    purpose: &str,
    v: &VerifiedCertificate,
    policy: &Policy,
) -> Option<(u16, &'static str, String)> {
    let (issuer, key, leaf) = match &v.revocation {
        RevocationStatus::Good => return None,
        // verify() turns a listing into Rejection::Revoked; answer as it would.
        RevocationStatus::Revoked { issuer, .. } => {
            let detail = format!("serial {}: listed by {issuer}", v.serial_hex);
            return Some((403, "revoked", truncate(&detail)));
        }
        RevocationStatus::NoCurrentCrl {
            issuer,
            issuer_key_id_hex,
            leaf,
        } => (issuer, issuer_key_id_hex, *leaf),
    };
    let missing = format!(
        "serial {}: no current CRL from {issuer} (key {key}){}",
        v.serial_hex,
        if leaf { "" } else { " about CA certificates" }
    );
    if leaf {
        match certificates.check_ocsp(v, policy.now_unix).await {
            Ok(OcspOutcome::Good) => {
                tracing::info!(purpose, serial = %v.serial_hex, "{missing}; OCSP answered good");
                return None;
            }
            Ok(OcspOutcome::Revoked) => {
                return Some((
                    403,
                    "revoked",
                    format!("serial {}: OCSP revoked", v.serial_hex),
                ));
            }
            Err(failure) => {
                let detail = format!("{missing}; OCSP: {failure}");
                return Some((503, "revocation_unavailable", truncate(&detail)));
            }
        }
    }
    Some((503, "revocation_unavailable", truncate(&missing)))
}

fn truncate(detail: &str) -> String {
    detail.chars().take(200).collect()
}

/// Applies `certificate.ocsp` to a certificate that passed every other check (the CRLs
/// included: a listed card never gets this far). `None` lets it through. A `revoked` answer
/// refuses it as a CRL listing would; a responder that cannot answer refuses it with
/// `ocsp_unavailable` under `require`, and under `prefer` leaves the decision to the CRLs,
/// which have already accepted it.
async fn ocsp_refusal(
    req: &Request<'_>,
    certificates: &Certificates,
    purpose: Purpose,
    who: &str,
    v: &VerifiedCertificate,
    policy: &Policy,
) -> Option<Reply> {
    let (code, detail) = ocsp_verdict(certificates, purpose.word(), v, policy).await?;
    if purpose == Purpose::Login {
        LOGINS.with_label_values(&[METHOD, code]).inc();
    }
    activity(req, None, who, purpose.word(), METHOD, code, &detail).await;
    tracing::info!(purpose = purpose.word(), ip = ?req.client_ip, "certificate refused: {code}");
    Some(error(403, code))
}

/// What `certificate.ocsp` says of a verified certificate: `None` to let it through, else
/// the refusal's code (`revoked`, `ocsp_unavailable`) and a detail for the activity log.
/// Shared by the card and the mobile certificate.
pub(super) async fn ocsp_verdict(
    certificates: &Certificates,
    purpose: &str,
    v: &VerifiedCertificate,
    policy: &Policy,
) -> Option<(&'static str, String)> {
    let mode = certificates.config.ocsp;
    if mode == OcspMode::Off {
        return None;
    }
    match certificates.check_ocsp(v, policy.now_unix).await {
        Ok(OcspOutcome::Good) => None,
        Ok(OcspOutcome::Revoked) => {
            Some(("revoked", format!("serial {}: OCSP revoked", v.serial_hex)))
        }
        Err(failure) => {
            let fallback = mode == OcspMode::Prefer;
            tracing::warn!(
                purpose,
                serial = %v.serial_hex,
                "OCSP check failed{}: {failure}",
                if fallback { ", the CRLs decide" } else { ", certificate refused" }
            );
            if fallback {
                return None;
            }
            let detail = format!("serial {}: {failure}", v.serial_hex);
            Some(("ocsp_unavailable", detail.chars().take(200).collect()))
        }
    }
}

async fn load_account(req: &Request<'_>, account_id: &str) -> Result<Option<Account>, Reply> {
    match req.state.accounts().await {
        Ok(store) => store
            .find_by_id(account_id)
            .await
            .map_err(|_| unavailable()),
        Err(_) => Err(unavailable()),
    }
}

/// When `require_identity_match` is on, the certificate's name and the national ID's last
/// four digits must be the account's, where the account holds them. A certificate without
/// the digits does not match an account that has them.
pub(super) fn identity_matches(
    certificates: &Certificates,
    account: &Account,
    v: &VerifiedCertificate,
) -> bool {
    if !certificates.config.require_identity_match {
        return true;
    }
    let name = account.display_name.trim();
    let name_ok = name.is_empty() || name == v.subject_cn.trim();
    let last4_ok =
        account.id_last4.is_empty() || v.id_last4.as_deref() == Some(account.id_last4.as_str());
    name_ok && last4_ok
}

async fn bind(
    req: &Request<'_>,
    certificates: &Certificates,
    s: &SessionData,
    v: &VerifiedCertificate,
) -> Reply {
    let account = match load_account(req, &s.account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return error(401, "no_session"),
        Err(reply) => return reply,
    };
    if account.is_aa() {
        return error(403, "aa_not_allowed");
    }
    if !identity_matches(certificates, &account, v) {
        activity(
            req,
            Some(&account),
            "",
            "bind",
            METHOD,
            "identity_mismatch",
            "",
        )
        .await;
        return error(403, "identity_mismatch");
    }
    let store = match req.state.accounts().await {
        Ok(store) => store,
        Err(_) => return unavailable(),
    };
    let binding = CertificateBinding {
        issuer: v.issuer.clone(),
        serial_hex: v.serial_hex.clone(),
        spki_sha256_hex: v.spki_sha256_hex.clone(),
        subject_name: v.subject_cn.clone(),
        id_last4: v.id_last4.clone().unwrap_or_default(),
    };
    match store
        .bind_certificate(&account.id, &binding, clock::now_secs() as i64)
        .await
    {
        Ok(CertificateBindOutcome::Bound) => {}
        Ok(CertificateBindOutcome::Conflict) => {
            activity(req, Some(&account), "", "bind", METHOD, "already_bound", "").await;
            return error(403, "already_bound");
        }
        Err(e) => {
            tracing::error!("certificate binding not stored: {e:#}");
            return unavailable();
        }
    }
    let detail = format!("serial {}", v.serial_hex);
    activity(req, Some(&account), "", "bind", METHOD, "success", &detail).await;
    super::notices::send(
        req,
        &account,
        menshen_pages::NoticeMail::FactorBound {
            method: req.lang.texts().method_certificate,
        },
    )
    .await;
    // All the account's sessions end; the user logs in again with the card.
    if req
        .state
        .sessions
        .destroy_account(&account.id)
        .await
        .is_err()
    {
        return unavailable();
    }
    tracing::info!(user = %account.login_name, "certificate bound");
    json(
        200,
        &json!({ "ok": true, "next": "/.menshen/login?bound=1" }),
    )
    .with_cookie(cookies::clear(req.names.session, req.names))
}

async fn login(
    req: &Request<'_>,
    certificates: &Certificates,
    ch: &Challenge,
    v: &VerifiedCertificate,
) -> Reply {
    let store = match req.state.accounts().await {
        Ok(store) => store,
        Err(_) => return unavailable(),
    };
    let account_id = match store
        .account_by_certificate(&v.issuer, &v.serial_hex, &v.spki_sha256_hex)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => {
            LOGINS.with_label_values(&[METHOD, "not_bound"]).inc();
            let detail = format!("serial {}", v.serial_hex);
            activity(req, None, "", "login", METHOD, "not_bound", &detail).await;
            return error(403, "not_bound");
        }
        Err(_) => return unavailable(),
    };
    let account = match load_account(req, &account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return error(403, "not_bound"),
        Err(reply) => return reply,
    };
    let account_ref = &account;
    let refuse = |code: &'static str| async move {
        LOGINS.with_label_values(&[METHOD, code]).inc();
        activity(req, Some(account_ref), "", "login", METHOD, code, "").await;
        error(403, code)
    };
    if !account.enabled || req.state.watch.is_disabled(&account.id) {
        return refuse("account_disabled").await;
    }
    if account.is_aa() {
        return refuse("aa_not_allowed").await;
    }
    if !identity_matches(certificates, &account, v) {
        return refuse("identity_mismatch").await;
    }
    // Not guessable, so it counts no failures; but a suspension after wrong passwords or
    // codes holds for every method.
    let now = clock::now_secs();
    match req
        .state
        .regulation
        .suspended_until(&account.login_name, account.unlocked_at.max(0) as u64, now)
        .await
    {
        Ok(None) => {}
        Ok(Some(until)) => {
            LOGINS.with_label_values(&[METHOD, "locked"]).inc();
            activity(req, Some(&account), "", "login", METHOD, "locked", "").await;
            return json(
                403,
                &json!({ "error": "locked", "until": taipei_clock(until) }),
            );
        }
        Err(_) => return unavailable(),
    }
    let sid = match full_session(
        req,
        &account,
        Factor::Certificate,
        METHOD,
        &ch.return_to,
        now,
    )
    .await
    {
        Ok(sid) => sid,
        Err(()) => return unavailable(),
    };
    let detail = format!("serial {}", v.serial_hex);
    if !activity(req, Some(&account), "", "login", METHOD, "success", &detail).await {
        let _ = req.state.sessions.destroy(&sid).await;
        return unavailable();
    }
    LOGINS.with_label_values(&[METHOD, "success"]).inc();
    tracing::info!(user = %account.login_name, ip = ?req.client_ip, "certificate login");
    json(
        200,
        &json!({ "ok": true, "next": crate::sso::landing(&ch.return_to) }),
    )
    .with_cookie(cookies::set(req.names.session, &sid, req.names, None))
}

/// Creates the fully authenticated session of a certificate sign-in (card or mobile) and
/// ends the browser's previous one: a session is never upgraded in place. `Err` when the
/// session store cannot take it.
pub(super) async fn full_session(
    req: &Request<'_>,
    account: &Account,
    factor: Factor,
    method: &str,
    return_to: &str,
    now: u64,
) -> Result<String, ()> {
    let data = SessionData {
        account_id: account.id.clone(),
        login_name: account.login_name.clone(),
        display_name: account.display_name.clone(),
        school_code: account.school_code.clone(),
        roles: account.roles.clone(),
        factors: vec![factor],
        stage: Stage::Authenticated,
        auth_method: method.to_string(),
        csrf: random::token(),
        created_at: now,
        last_seen: now,
        return_to: Some(return_to.to_string()),
        portal: None,
        site: None,
        client_ip: req.client_ip_text(),
        device: req.device(),
    };
    let sid = req
        .state
        .sessions
        .create(&data, now)
        .await
        .map_err(|_| ())?;
    if let Some(old) = req.cookies.session.value() {
        let _ = req.state.sessions.destroy(old).await;
    }
    Ok(sid)
}
