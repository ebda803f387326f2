//! The citizen digital certificate (自然人憑證) trust material: the trust store (roots and
//! MOICA issuing CAs, read once at start) and the revocation lists, refreshed in the
//! background.
//!
//! Requests read the current [`RevocationLists`] through an `Arc` swapped under a lock held
//! only for the swap, so a refresh never blocks a login. A refresh copies the lists in force,
//! loads each configured CRL (files and http(s) URLs, at most [`MAX_CRL_BYTES`] each) into
//! the copy on its own, off the async workers, and swaps the copy in. A source that fails is
//! logged and its issuer's old list stays until it ages out (nextUpdate plus
//! `certificate.crl_grace`); an older list than the one held is refused (no rollback). A CA
//! without a current list makes its certificates fail closed in the handlers.
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
    CrlIssuer, Freshness, MAX_CRL_BYTES, OcspError, OcspRequest, OcspStatus, RevocationLists,
    TrustStore, VerifiedCertificate,
};

use crate::clock;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// How long one CRL download may take (MOICA's complete lists hold hundreds of thousands of
/// entries: tens of MiB; the largest accepted is [`MAX_CRL_BYTES`]).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
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

    /// The clock CRLs are judged by now: the wall clock and `certificate.crl_grace`.
    pub fn freshness(&self) -> Freshness {
        Freshness {
            now_unix: clock::now_secs() as i64,
            grace_secs: i64::try_from(self.config.crl_grace.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// Loads every configured CRL into a copy of the lists in force, each source on its
    /// own, and swaps the copy in. A source that fails (unreachable, refused, older than the
    /// list held) is logged and skipped: its issuer's list in force stays, and ages out by
    /// its nextUpdate plus `crl_grace`, after which that CA's cards fail closed.
    pub async fn refresh(&self) -> Refresh {
        let at = self.freshness();
        let (lists, failed) = self.load_sources((*self.revoked()).clone(), at).await;
        let uncovered = lists.uncovered(&self.trust, at);
        for ca in &uncovered {
            tracing::error!(
                ca = %ca_label(ca),
                issuer = %ca.name,
                issuer_key_id = %ca.key_id_hex,
                "no current CRL: its certificates are refused with revocation_unavailable \
                 (unless OCSP answers good for a card)"
            );
        }
        let entries = lists.len();
        self.swap(lists);
        Refresh {
            entries,
            failed,
            uncovered: uncovered.len(),
        }
    }

    /// For `check-config`: loads every source once (however old its list: the question is
    /// which CAs the configured sources speak for) and names each source that failed and
    /// each CA no source covers, whose certificates would all be refused.
    pub async fn coverage_warnings(&self) -> Vec<String> {
        let at = Freshness {
            now_unix: clock::now_secs() as i64,
            grace_secs: i64::MAX,
        };
        let (lists, mut warnings) = self.load_sources(RevocationLists::new(), at).await;
        for ca in lists.uncovered(&self.trust, at) {
            warnings.push(format!(
                "no CRL in certificate.crls covers {} (key identifier {}{}): its {} would be \
                 refused with revocation_unavailable",
                ca.name,
                ca.key_id_hex,
                if ca.about_ca_certificates {
                    ", its list about CA certificates"
                } else {
                    ""
                },
                if ca.about_ca_certificates {
                    "CAs' certificates, and so their cards,"
                } else {
                    "cards"
                },
            ));
        }
        warnings
    }

    /// Loads each configured source into `lists`, on its own; returns the lists and, for
    /// each source that failed, why.
    async fn load_sources(
        &self,
        mut lists: RevocationLists,
        at: Freshness,
    ) -> (RevocationLists, Vec<String>) {
        let mut failed = Vec::new();
        for source in &self.config.crls {
            let (name, bytes) = match self.read_source(source).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!("CRL source skipped: {e:#}");
                    failed.push(format!("{e:#}"));
                    continue;
                }
            };
            let trust = self.trust.clone();
            // Cheap (each list is shared): what to go on from if the load panics.
            let before = lists.clone();
            // Parsing and verifying a large CRL takes a while: not on the proxy's workers.
            let joined = tokio::task::spawn_blocking(move || {
                let result = lists.load(&bytes, &trust, at);
                (lists, result)
            })
            .await;
            let result;
            (lists, result) = match joined {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!("CRL {name}: loading panicked: {e}");
                    failed.push(format!("CRL {name}: loading panicked"));
                    (before, Ok(Vec::new()))
                }
            };
            match result {
                Ok(infos) => {
                    for info in infos {
                        tracing::info!(
                            source = %name,
                            issuer = %info.issuer,
                            issuer_key_id = %info.issuer_key_id_hex,
                            this_update = info.this_update_unix,
                            next_update = ?info.next_update_unix,
                            entries = info.entries,
                            "CRL loaded"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!("CRL {name} not loaded, keeping its issuer's list: {e}");
                    failed.push(format!("CRL {name}: {e}"));
                }
            }
        }
        (lists, failed)
    }

    /// A source's name for logs and its bytes, at most [`MAX_CRL_BYTES`].
    async fn read_source(&self, source: &CrlSource) -> anyhow::Result<(String, Vec<u8>)> {
        match source {
            CrlSource::File(path) => {
                let path = path.clone();
                let shown = path.display().to_string();
                let bytes = tokio::task::spawn_blocking(move || read_capped(&path))
                    .await?
                    .with_context(|| format!("cannot read CRL {shown}"))?;
                Ok((shown, bytes))
            }
            CrlSource::Url(url) => Ok((url.clone(), self.fetch(url).await?)),
        }
    }

    /// Downloads a CRL, streaming: never more than [`MAX_CRL_BYTES`] held.
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
        let too_large = || anyhow::anyhow!("CRL {url}: larger than {MAX_CRL_BYTES} bytes");
        let announced = resp.content_length().unwrap_or(0);
        if announced > MAX_CRL_BYTES as u64 {
            return Err(too_large());
        }
        // Trust the announced length for the first allocation only, and only up to the cap.
        let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
        while let Some(chunk) = resp
            .chunk()
            .await
            .with_context(|| format!("CRL {url}: download interrupted"))?
        {
            if body.len() + chunk.len() > MAX_CRL_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The first load, at start (before Pingora's runtime exists). Whatever fails is logged
    /// and the background refresh tries again soon; cards of a CA without a current list
    /// are refused (fail closed) meanwhile. Returns whether every source loaded and every CA
    /// has a current list.
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
        let done = rt.block_on(self.refresh());
        if done.failed.is_empty() {
            tracing::info!(
                entries = done.entries,
                "certificate revocation lists loaded"
            );
        } else {
            tracing::error!(
                entries = done.entries,
                failed = done.failed.len(),
                "certificate revocation lists loaded in part: {}",
                done.failed.join("; ")
            );
        }
        done.failed.is_empty() && done.uncovered == 0
    }

    /// Each CA a verification needs a CRL from, with the age of its newest list held and
    /// whether that list is current: what the CRL metrics report.
    pub fn crl_ages(&self) -> Vec<CrlAge> {
        let at = self.freshness();
        let lists = self.revoked();
        let held = lists.crls();
        self.trust
            .crl_issuers()
            .iter()
            .map(|ca| {
                let current = lists.current_crl(&ca.key_id, ca.about_ca_certificates, at);
                let newest = current.or_else(|| {
                    held.iter()
                        .copied()
                        .filter(|info| info.issuer_key_id_hex == ca.key_id_hex)
                        .max_by_key(|info| info.this_update_unix)
                });
                CrlAge {
                    label: ca_label(ca),
                    age_secs: newest.map(|info| at.now_unix - info.this_update_unix),
                    current: current.is_some(),
                }
            })
            .collect()
    }
}

/// What one refresh did.
#[derive(Debug)]
pub struct Refresh {
    /// Revoked serials held after it.
    pub entries: usize,
    /// Each source that failed, and why.
    pub failed: Vec<String>,
    /// CAs left without a current CRL.
    pub uncovered: usize,
}

/// One CA's CRL as the metrics see it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrlAge {
    /// [`ca_label`].
    pub label: String,
    /// Seconds since the thisUpdate of the newest list held (current if one is), if any.
    pub age_secs: Option<i64>,
    /// Whether a current list is held.
    pub current: bool,
}

/// A short fixed name for a CA, from the trust store (never from a request): the last
/// attribute of its name, the first 8 hex digits of its key identifier, and `/arl` for the
/// list about CA certificates (the root's). `內政部憑證管理中心/3a1f09c2`,
/// `政府憑證總管理中心/77aa01b3/arl`.
pub fn ca_label(ca: &CrlIssuer) -> String {
    let last = ca.name.rsplit(", ").next().unwrap_or(&ca.name);
    let short = last.split_once('=').map_or(last, |(_, value)| value);
    let key: String = ca.key_id_hex.chars().take(8).collect();
    let mut label = format!("{short}/{key}");
    if ca.about_ca_certificates {
        label.push_str("/arl");
    }
    label
}

/// A CRL file, refused when larger than [`MAX_CRL_BYTES`] without reading past the cap.
fn read_capped(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_CRL_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_CRL_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_CRL_BYTES} bytes"
        )));
    }
    Ok(bytes)
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
            let done = self.certificates.refresh().await;
            ok = done.failed.is_empty() && done.uncovered == 0;
            if done.failed.is_empty() {
                tracing::info!(
                    entries = done.entries,
                    "certificate revocation lists refreshed"
                );
            } else {
                tracing::error!(
                    entries = done.entries,
                    "CRL refresh failed for {} source(s), keeping their previous lists: {}",
                    done.failed.len(),
                    done.failed.join("; ")
                );
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
            crl_grace: Duration::from_secs(12 * 3600),
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
    fn ca_labels_are_short_and_tell_lists_apart() {
        let ca = |about_ca_certificates| CrlIssuer {
            name: "C=TW, O=行政院, OU=內政部憑證管理中心".into(),
            key_id: vec![0x3a, 0x1f, 0x09, 0xc2, 0x55],
            key_id_hex: "3a1f09c255".into(),
            about_ca_certificates,
        };
        assert_eq!(ca_label(&ca(false)), "內政部憑證管理中心/3a1f09c2");
        assert_eq!(ca_label(&ca(true)), "內政部憑證管理中心/3a1f09c2/arl");
    }

    #[test]
    fn a_crl_file_over_the_limit_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("big.crl");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_CRL_BYTES as u64 + 1).expect("sparse file");
        let error = read_capped(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("larger than"), "{error}");
        file.set_len(16).expect("shrink");
        assert_eq!(read_capped(&path).map(|b| b.len()).ok(), Some(16));
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
