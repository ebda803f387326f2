//! What every request handler shares: the validated config turned into ready-to-use parts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use menshen_config::{Config, Site};
use prometheus::IntCounter;
use tokio::sync::OnceCell;

use crate::accounts::AccountStore;
use crate::captcha::Captchas;
use crate::connections::ConnectionLimits;
use crate::identity::IdentityHeaders;
use crate::passwords::PasswordChecker;
use crate::regulation::Regulation;
use crate::routing::Router;
use crate::sessions::Sessions;
use crate::volatile::Volatile;
use menshen_otp::sealed::Keyring;

/// Outcome words used as metric labels, fixed at compile time.
pub const OUTCOMES: &[&str] = &[
    "proxied",
    "login_redirect",
    "unauthorized",
    "forbidden",
    "menshen",
    "bad_request",
    "unavailable",
    "upstream_error",
    "https_redirect",
];

/// One site, ready for the request path: parsed header names, upstream rotation, and metric
/// handles resolved once (label lookups are not free on a hot path).
pub struct SiteRuntime {
    pub config: Site,
    /// The single sign-on portal (`[portal]`): it serves Menshen's pages and proxies nothing.
    pub portal: bool,
    pub identity: IdentityHeaders,
    next_upstream: AtomicUsize,
    counters: Vec<IntCounter>,
}

impl SiteRuntime {
    pub fn new(config: Site) -> anyhow::Result<Self> {
        let identity = IdentityHeaders::new(&config.headers, &config.untrusted_headers)?;
        let counters = OUTCOMES
            .iter()
            .map(|o| crate::metrics::REQUESTS.with_label_values(&[config.name.as_str(), o]))
            .collect();
        Ok(SiteRuntime {
            config,
            portal: false,
            identity,
            next_upstream: AtomicUsize::new(0),
            counters,
        })
    }

    /// The portal host as a routing entry: no upstream, every path outside `/.menshen/`
    /// refused (the proxy never consults these rules for it; they are a second lock).
    pub fn portal(host: &str) -> anyhow::Result<Self> {
        let config = Site {
            name: "portal".to_string(),
            hosts: vec![host.to_string()],
            upstreams: Vec::new(),
            upstream_tls: false,
            upstream_sni: None,
            rules: menshen_policies::access::AccessRules::new(
                Vec::new(),
                menshen_policies::access::Access::Deny,
                false,
            ),
            headers: menshen_config::HeaderNames::default(),
            untrusted_headers: menshen_policies::headers::FORWARDING
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
            allow_double_encoded_separators: false,
            display_name: None,
        };
        Ok(SiteRuntime {
            portal: true,
            ..SiteRuntime::new(config)?
        })
    }

    /// Round-robin over the site's upstream addresses (resolved once at start).
    pub fn pick_upstream(&self) -> Option<SocketAddr> {
        let ups = &self.config.upstreams;
        if ups.is_empty() {
            return None;
        }
        let i = self.next_upstream.fetch_add(1, Ordering::Relaxed);
        ups.get(i % ups.len()).copied()
    }

    pub fn count(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome)
            && let Some(c) = self.counters.get(i)
        {
            c.inc();
        }
    }
}

/// Accounts known to be disabled, refreshed by a background poll of the database, and when
/// that poll last succeeded: if the database stops answering, the gateway stops letting
/// people in (fail closed) instead of trusting a stale list.
#[derive(Default)]
pub struct AccountWatch {
    disabled: RwLock<HashSet<String>>,
    /// Account id → sessions that began before this time are void.
    not_before: RwLock<HashMap<String, u64>>,
    last_ok: AtomicU64,
}

impl AccountWatch {
    pub fn update(&self, disabled: Vec<String>, now: u64) {
        self.update_rules(disabled, Vec::new(), now);
    }

    pub fn update_rules(&self, disabled: Vec<String>, not_before: Vec<(String, i64)>, now: u64) {
        if let Ok(mut set) = self.disabled.write() {
            *set = disabled.into_iter().collect();
        }
        if let Ok(mut map) = self.not_before.write() {
            *map = not_before
                .into_iter()
                .map(|(id, t)| (id, t.max(0) as u64))
                .collect();
        }
        self.last_ok.store(now, Ordering::Release);
    }

    /// Whether a session of `account_id` that began at `created_at` may still be used. A
    /// session that began in the same second as a reset counts as before it: the reset wins.
    pub fn allows(&self, account_id: &str, created_at: u64) -> bool {
        if self.is_disabled(account_id) {
            return false;
        }
        // A poisoned lock means a writer panicked: refuse.
        self.not_before
            .read()
            .map(|m| m.get(account_id).is_none_or(|t| created_at > *t))
            .unwrap_or(false)
    }

    pub fn is_disabled(&self, account_id: &str) -> bool {
        // A poisoned lock means a writer panicked: treat every account as disabled.
        self.disabled
            .read()
            .map(|s| s.contains(account_id))
            .unwrap_or(true)
    }

    /// True when the database answered recently enough to trust the list.
    pub fn is_fresh(&self, now: u64, max_age: u64) -> bool {
        now.saturating_sub(self.last_ok.load(Ordering::Acquire)) <= max_age
    }

    pub fn mark_disabled(&self, account_id: &str) {
        if let Ok(mut set) = self.disabled.write() {
            set.insert(account_id.to_string());
        }
    }
}

/// How often the account poll runs, and how old its answer may be before the gateway fails
/// closed.
pub const ACCOUNT_POLL_SECS: u64 = 2;
pub const ACCOUNT_STALE_SECS: u64 = 15;

pub struct AppState {
    pub config: Config,
    pub router: Router,
    pub sessions: Sessions,
    pub passwords: PasswordChecker,
    /// Open client connections, counted against `[server]` caps.
    pub connections: ConnectionLimits,
    pub watch: Arc<AccountWatch>,
    pub volatile: Arc<dyn Volatile>,
    pub regulation: Regulation,
    pub captchas: Captchas,
    /// Seals OTP secrets at rest.
    pub keyring: Keyring,
    /// Configured OpenID Connect providers, with their cached discovery.
    pub providers: Vec<Arc<crate::oidc::Provider>>,
    pub http: crate::oidc::HttpClient,
    /// The single sign-on portal, when `[portal]` is set.
    pub portal: Option<crate::sso::Portal>,
    /// The Content-Security-Policy of Menshen's own pages ([`crate::respond::policy`]).
    pub csp: String,
    /// Citizen-certificate trust store and revocation lists, when `[certificate]` is set.
    pub certificates: Option<Arc<crate::certificates::Certificates>>,
    /// MOI's SP API client for the mobile citizen certificate, when `[mobile_certificate]`
    /// is set.
    pub mobile: Option<Arc<crate::mobile::Mobile>>,
    /// Outgoing mail, when `[mail]` is set.
    pub mailer: Option<crate::mail::Mailer>,
    /// Password reset links.
    pub resets: crate::recovery::Resets,
    /// Connected lazily inside the proxy's runtime (Pingora has none before it starts).
    accounts: OnceCell<AccountStore>,
}

impl AppState {
    pub fn new(
        config: Config,
        sessions: Sessions,
        volatile: Arc<dyn Volatile>,
        watch: Arc<AccountWatch>,
    ) -> anyhow::Result<Self> {
        let mut sites = config
            .sites
            .iter()
            .map(|s| SiteRuntime::new(s.clone()).map(Arc::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(portal) = &config.portal {
            sites.push(Arc::new(SiteRuntime::portal(&portal.host)?));
        }
        let passwords = PasswordChecker::new(
            config.login.argon2_max_concurrent,
            config.login.argon2_queue,
        )?;
        let keyring =
            Keyring::parse(&config.otp.keys).map_err(|e| anyhow::anyhow!("otp.keys: {e}"))?;
        Ok(AppState {
            regulation: Regulation::new(volatile.clone(), config.lockout.clone()),
            captchas: Captchas::new(volatile.clone()),
            resets: crate::recovery::Resets::new(volatile.clone()),
            mailer: config
                .mail
                .as_ref()
                .map(crate::mail::Mailer::start)
                .transpose()?,
            volatile,
            keyring,
            providers: config
                .oidc
                .iter()
                .map(|p| Arc::new(crate::oidc::Provider::new(p.clone())))
                .collect(),
            http: crate::oidc::HttpClient::new()?,
            certificates: config
                .certificate
                .clone()
                .map(crate::certificates::Certificates::new)
                .transpose()?
                .map(Arc::new),
            mobile: config
                .mobile_certificate
                .as_ref()
                .map(crate::mobile::Mobile::new)
                .transpose()?
                .map(Arc::new),
            csp: crate::respond::policy(
                &config
                    .portal
                    .iter()
                    .flat_map(|_| sites.iter().flat_map(|s| s.config.hosts.iter()))
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                config.session.insecure_dev_cookie,
            ),
            router: Router::new(&sites),
            portal: config
                .portal
                .as_ref()
                .map(|p| crate::sso::Portal::new(&p.host)),
            connections: ConnectionLimits::new(
                config.connections.max_total,
                config.connections.max_per_address,
            ),
            config,
            sessions,
            passwords,
            watch,
            accounts: OnceCell::new(),
        })
    }

    pub async fn accounts(&self) -> anyhow::Result<&AccountStore> {
        self.accounts
            .get_or_try_init(|| AccountStore::connect(&self.config.store.database))
            .await
    }
}
