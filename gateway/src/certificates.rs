//! The citizen digital certificate (自然人憑證) trust material: the trust store (roots and
//! MOICA issuing CAs, read once at start) and the revocation lists, refreshed in the
//! background.
//!
//! Requests read the current [`RevocationLists`] through an `Arc` swapped under a lock held
//! only for the swap, so a refresh never blocks a login. A refresh loads every configured
//! CRL (files and http(s) URLs) into a new value off the async workers and swaps it in only
//! when all of them loaded; on any failure the old lists stay and the failure is logged.
//!
//! With `certificate.ocsp` on, [`Certificates::check_ocsp`] also asks the CA's OCSP
//! responder about a verified card, from the verify handler only (never on the proxy path),
//! within `ocsp_timeout`. Definite answers are kept in memory until their nextUpdate (at most
//! an hour), so a busy morning does not ask about the same card again and again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use menshen_config::{CertificateConfig, CrlSource};
use menshen_pki::{
    OcspError, OcspRequest, OcspStatus, RevocationLists, TrustStore, VerifiedCertificate,
};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// How long one CRL download may take, and the largest CRL accepted (MOICA's complete lists
/// hold hundreds of thousands of entries: tens of MiB).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
const CRL_LIMIT: usize = 256 * 1024 * 1024;
/// After a failed refresh, try again this soon (or at `crl_refresh`, if sooner).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);
/// The largest OCSP response read: a basic response with a responder certificate is a few
/// KiB.
const OCSP_LIMIT: usize = 64 * 1024;
/// Random octets in each OCSP request's nonce (RFC 8954 allows 1 to 32).
const OCSP_NONCE_LEN: usize = 16;
/// A definite OCSP answer is reused at most this long, however late its nextUpdate.
const OCSP_CACHE_SECS: i64 = 3600;
/// Answers kept at most; when full (after dropping expired ones) new answers go uncached.
const OCSP_CACHE_ENTRIES: usize = 10_000;

/// The trust store and the current revocation lists.
pub struct Certificates {
    pub config: CertificateConfig,
    pub trust: Arc<TrustStore>,
    revoked: RwLock<Arc<RevocationLists>>,
    http: reqwest::Client,
    /// For OCSP requests: `ocsp_timeout` for the whole exchange, no proxy, no redirects.
    ocsp_http: reqwest::Client,
    ocsp_answers: OcspCache,
}

/// A responder's definite answer about a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspOutcome {
    Good,
    Revoked,
}

/// Why the responder gave no definite answer. Messages name the responder by origin only
/// (scheme, host, port): a configured URL could carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum OcspFailure {
    #[error("no OCSP responder: certificate.ocsp_url is not set and the certificate names none")]
    NoUrl,
    #[error("OCSP responder {origin} not reached: {detail}")]
    Unreachable { origin: String, detail: String },
    #[error("OCSP responder {origin} answered HTTP {status}")]
    HttpStatus { origin: String, status: u16 },
    #[error("OCSP responder {origin}: response larger than {OCSP_LIMIT} bytes")]
    TooLarge { origin: String },
    #[error("OCSP responder {origin}: {error}")]
    Invalid { origin: String, error: OcspError },
    #[error("OCSP responder {origin} does not know the certificate")]
    Unknown { origin: String },
}

impl Certificates {
    /// Reads the trust anchors and intermediates. Fails (and so fails the start) when one
    /// cannot be read or is not a CA certificate. CRLs are loaded by [`Certificates::refresh`].
    pub fn new(config: CertificateConfig) -> anyhow::Result<Self> {
        let mut trust = TrustStore::new();
        for path in &config.trust_anchors {
            let bytes = std::fs::read(path).with_context(|| {
                format!("certificate.trust_anchors: cannot read {}", path.display())
            })?;
            trust.add_root(&bytes).map_err(|e| {
                anyhow::anyhow!("certificate.trust_anchors: {}: {e}", path.display())
            })?;
        }
        for path in &config.intermediates {
            let bytes = std::fs::read(path).with_context(|| {
                format!("certificate.intermediates: cannot read {}", path.display())
            })?;
            trust.add_intermediate(&bytes).map_err(|e| {
                anyhow::anyhow!("certificate.intermediates: {}: {e}", path.display())
            })?;
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .context("cannot build the CRL download client")?;
        let ocsp_http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.ocsp_timeout)
            .timeout(config.ocsp_timeout)
            .build()
            .context("cannot build the OCSP client")?;
        Ok(Certificates {
            config,
            trust: Arc::new(trust),
            revoked: RwLock::new(Arc::new(RevocationLists::new())),
            http,
            ocsp_http,
            ocsp_answers: OcspCache::default(),
        })
    }

    /// Asks the OCSP responder (`certificate.ocsp_url`, else the one the certificate names)
    /// about `v`, a certificate [`menshen_pki::verify`] accepted at `now_unix`. A cached
    /// definite answer is returned without asking. `unknown` is a failure: it decides
    /// nothing. What a failure means is the caller's decision (`certificate.ocsp`).
    pub async fn check_ocsp(
        &self,
        v: &VerifiedCertificate,
        now_unix: i64,
    ) -> Result<OcspOutcome, OcspFailure> {
        let key = format!("{}:{}", v.issuer_key_id_hex, v.serial_hex);
        if let Some(outcome) = self.ocsp_answers.get(&key, now_unix) {
            return Ok(outcome);
        }
        let url = self
            .config
            .ocsp_url
            .as_deref()
            .or(v.ocsp_url.as_deref())
            .ok_or(OcspFailure::NoUrl)?;
        let origin = origin(url);
        let mut nonce = [0u8; OCSP_NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let invalid = |error| OcspFailure::Invalid {
            origin: origin.clone(),
            error,
        };
        let request = OcspRequest::new(v, &nonce).map_err(invalid)?;
        let body = self.post_ocsp(url, &origin, request.der()).await?;
        let answer = request
            .check_response(&body, &self.trust, now_unix)
            .map_err(invalid)?;
        let outcome = match answer.status {
            OcspStatus::Good => OcspOutcome::Good,
            OcspStatus::Revoked => OcspOutcome::Revoked,
            OcspStatus::Unknown => return Err(OcspFailure::Unknown { origin }),
        };
        if let Some(next_update) = answer.next_update_unix {
            let until = next_update.min(now_unix.saturating_add(OCSP_CACHE_SECS));
            self.ocsp_answers.put(key, outcome, until, now_unix);
        }
        Ok(outcome)
    }

    async fn post_ocsp(
        &self,
        url: &str,
        origin: &str,
        request: &[u8],
    ) -> Result<Vec<u8>, OcspFailure> {
        let unreachable = |e: reqwest::Error| OcspFailure::Unreachable {
            origin: origin.to_owned(),
            detail: if e.is_timeout() {
                format!("no answer within {:?}", self.config.ocsp_timeout)
            } else {
                error_chain(&e.without_url())
            },
        };
        let mut resp = self
            .ocsp_http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/ocsp-request")
            .header(http::header::ACCEPT, "application/ocsp-response")
            .body(request.to_vec())
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(OcspFailure::HttpStatus {
                origin: origin.to_owned(),
                status: resp.status().as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > OCSP_LIMIT {
                return Err(OcspFailure::TooLarge {
                    origin: origin.to_owned(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The revocation lists in force now.
    pub fn revoked(&self) -> Arc<RevocationLists> {
        match self.revoked.read() {
            Ok(r) => r.clone(),
            // A writer panicked mid-swap; the value itself is still a whole Arc.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, lists: RevocationLists) {
        let new = Arc::new(lists);
        match self.revoked.write() {
            Ok(mut r) => *r = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Loads every configured CRL into a new value and swaps it in. On any failure nothing
    /// changes and the error says which source failed.
    pub async fn refresh(&self) -> anyhow::Result<usize> {
        let mut sources: Vec<(String, Vec<u8>)> = Vec::with_capacity(self.config.crls.len());
        for source in &self.config.crls {
            let (name, bytes) = match source {
                CrlSource::File(path) => {
                    let path = path.clone();
                    let shown = path.display().to_string();
                    let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
                        .await?
                        .with_context(|| format!("cannot read CRL {shown}"))?;
                    (shown, bytes)
                }
                CrlSource::Url(url) => (url.clone(), self.fetch(url).await?),
            };
            sources.push((name, bytes));
        }
        let trust = self.trust.clone();
        // Parsing and verifying a large CRL takes a while: not on the proxy's workers.
        let lists = tokio::task::spawn_blocking(move || {
            let mut lists = RevocationLists::new();
            for (name, bytes) in &sources {
                lists
                    .load(bytes, &trust)
                    .map_err(|e| anyhow::anyhow!("CRL {name}: {e}"))?;
            }
            anyhow::Ok(lists)
        })
        .await??;
        let entries = lists.len();
        self.swap(lists);
        Ok(entries)
    }

    async fn fetch(&self, url: &str) -> anyhow::Result<Vec<u8>> {
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("cannot fetch CRL {url}"))?;
        if !resp.status().is_success() {
            anyhow::bail!("CRL {url}: HTTP status {}", resp.status());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("CRL {url}: download interrupted"))?
        {
            if body.len() + chunk.len() > CRL_LIMIT {
                anyhow::bail!("CRL {url}: larger than {CRL_LIMIT} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The first load, at start (before Pingora's runtime exists): a failure is logged and
    /// the background refresh tries again soon.
    pub fn load_at_start(&self) -> bool {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("cannot load CRLs at start: {e}");
                return false;
            }
        };
        match rt.block_on(self.refresh()) {
            Ok(entries) => {
                tracing::info!(entries, "certificate revocation lists loaded");
                true
            }
            Err(e) => {
                tracing::error!("certificate revocation lists not loaded: {e:#}");
                false
            }
        }
    }
}

/// `scheme://host:port` of a URL, for messages: never its path, query or credentials.
fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "(invalid URL)".to_owned())
}

/// An error and its causes, `: `-separated (reqwest's own message is only the outermost).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Definite OCSP answers by issuer key and serial, each until its expiry (Unix seconds).
/// Bounded: when full, expired answers are dropped and, if none had expired, the new answer
/// is not kept, so a flood of distinct cards cannot grow it.
#[derive(Default)]
struct OcspCache {
    answers: Mutex<HashMap<String, (OcspOutcome, i64)>>,
}

impl OcspCache {
    fn get(&self, key: &str, now_unix: i64) -> Option<OcspOutcome> {
        let answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        answers
            .get(key)
            .filter(|(_, until)| *until > now_unix)
            .map(|(outcome, _)| *outcome)
    }

    fn put(&self, key: String, outcome: OcspOutcome, until: i64, now_unix: i64) {
        if until <= now_unix {
            return;
        }
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if answers.len() >= OCSP_CACHE_ENTRIES && !answers.contains_key(&key) {
            answers.retain(|_, (_, expiry)| *expiry > now_unix);
            if answers.len() >= OCSP_CACHE_ENTRIES {
                return;
            }
        }
        answers.insert(key, (outcome, until));
    }
}

/// Refreshes the CRLs every `crl_refresh` (sooner after a failure).
pub struct CrlRefresher {
    pub certificates: Arc<Certificates>,
    /// Whether the load at start succeeded (else the first retry comes soon).
    pub loaded: bool,
}

#[async_trait]
impl BackgroundService for CrlRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let every = self.certificates.config.crl_refresh;
        let mut ok = self.loaded;
        loop {
            let wait = if ok {
                every
            } else {
                every.min(RETRY_AFTER_FAILURE)
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match self.certificates.refresh().await {
                Ok(entries) => {
                    tracing::info!(entries, "certificate revocation lists refreshed");
                    ok = true;
                }
                Err(e) => {
                    tracing::error!("CRL refresh failed, keeping the previous lists: {e:#}");
                    ok = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(anchor: std::path::PathBuf) -> CertificateConfig {
        CertificateConfig {
            trust_anchors: vec![anchor],
            intermediates: Vec::new(),
            crls: Vec::new(),
            crl_refresh: Duration::from_secs(3600),
            required_policies: Vec::new(),
            require_identity_match: false,
            component_download_url: None,
            component_url: "http://localhost:61161".into(),
            component_min_version: "1.3.4".into(),
            ocsp: menshen_config::OcspMode::Off,
            ocsp_url: None,
            ocsp_timeout: Duration::from_secs(3),
        }
    }

    #[test]
    fn ocsp_answers_are_kept_until_their_expiry_and_the_cache_is_bounded() {
        let cache = OcspCache::default();
        cache.put("a".into(), OcspOutcome::Good, 1_100, 1_000);
        cache.put("b".into(), OcspOutcome::Revoked, 1_000, 1_000);
        assert_eq!(cache.get("a", 1_099), Some(OcspOutcome::Good));
        assert_eq!(cache.get("a", 1_100), None, "expired");
        assert_eq!(cache.get("b", 999), None, "already expired: not kept");

        for i in 0..OCSP_CACHE_ENTRIES {
            cache.put(format!("k{i}"), OcspOutcome::Good, 2_000, 1_000);
        }
        cache.put("late".into(), OcspOutcome::Good, 2_000, 1_000);
        assert_eq!(cache.get("late", 1_000), None, "full: not kept");
        // Once the others have expired, room is made.
        cache.put("later".into(), OcspOutcome::Revoked, 3_000, 2_500);
        assert_eq!(cache.get("later", 2_500), Some(OcspOutcome::Revoked));
        let held = cache.answers.lock().map(|a| a.len()).unwrap_or_default();
        assert_eq!(held, 1);
    }

    #[test]
    fn responder_failures_name_the_origin_only() {
        assert_eq!(
            origin("http://user:secret@ocsp.example.test:8080/cgi-bin/ocsp?x=1"),
            "http://ocsp.example.test:8080"
        );
        assert_eq!(origin("not a url"), "(invalid URL)");
        let failure = OcspFailure::HttpStatus {
            origin: origin("http://user:secret@ocsp.example.test/ocsp"),
            status: 500,
        };
        assert!(!failure.to_string().contains("secret"), "{failure}");
    }

    #[test]
    fn an_unusable_anchor_fails_the_start_with_its_path() {
        let dir = tempfile::tempdir().expect("dir");
        let garbage = dir.path().join("root.pem");
        std::fs::write(&garbage, b"not a certificate").expect("write");
        let error = Certificates::new(config(garbage.clone()))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("trust_anchors"), "{error}");
        assert!(error.contains(&garbage.display().to_string()), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = Certificates::new(config(missing))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("cannot read"), "{error}");
    }
}
