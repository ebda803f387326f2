//! The citizen digital certificate (自然人憑證) trust material: the trust store (roots and
//! MOICA issuing CAs, read once at start) and the revocation lists, refreshed in the
//! background.
//!
//! Requests read the current [`RevocationLists`] through an `Arc` swapped under a lock held
//! only for the swap, so a refresh never blocks a login. A refresh loads every configured
//! CRL (files and http(s) URLs) into a new value off the async workers and swaps it in only
//! when all of them loaded; on any failure the old lists stay and the failure is logged.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use menshen_config::{CertificateConfig, CrlSource};
use menshen_pki::{RevocationLists, TrustStore};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// How long one CRL download may take, and the largest CRL accepted (MOICA's complete lists
/// hold hundreds of thousands of entries: tens of MiB).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
const CRL_LIMIT: usize = 256 * 1024 * 1024;
/// After a failed refresh, try again this soon (or at `crl_refresh`, if sooner).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

/// The trust store and the current revocation lists.
pub struct Certificates {
    pub config: CertificateConfig,
    pub trust: Arc<TrustStore>,
    revoked: RwLock<Arc<RevocationLists>>,
    http: reqwest::Client,
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
        Ok(Certificates {
            config,
            trust: Arc::new(trust),
            revoked: RwLock::new(Arc::new(RevocationLists::new())),
            http,
        })
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
        }
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
