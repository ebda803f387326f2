//! Prometheus metrics, served on their own listener (never the public one).
//!
//! Labels never carry a secret or a user-chosen value: only site names from the config and
//! fixed outcome words.

use std::sync::{Arc, LazyLock, RwLock, Weak};

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::certificates::Certificates;

pub static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable_metric(name));
    // Registration fails only for a duplicate name, which the names below rule out.
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
}

fn unreachable_metric(name: &str) -> IntCounterVec {
    // Only reachable with an invalid metric name written in this file.
    IntCounterVec::new(Opts::new(format!("{name}_invalid"), "invalid"), &[])
        .unwrap_or_else(|_| std::process::abort())
}

/// Requests by site and how Menshen answered them.
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "menshen_requests_total",
        "Requests by site and outcome (proxied, login_redirect, unauthorized, forbidden, denied, menshen, unknown_host, bad_request, unavailable, upstream_error).",
        &["site", "outcome"],
    )
});

/// Login attempts by method and result.
pub static LOGINS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "menshen_logins_total",
        "Login attempts by method and result.",
        &["method", "result"],
    )
});

/// Single sign-on hand-offs by result: `issued` by the portal; at a site `redeemed`,
/// `replayed`, `expired`, `wrong_host`, `unknown` (not a code we issued), `session_ended`
/// (the portal session ended before the code was used).
pub static HANDOFFS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "menshen_handoffs_total",
        "Single sign-on hand-offs by result (issued, redeemed, replayed, expired, wrong_host, unknown, session_ended).",
        &["result"],
    )
});

/// Mails by kind (`password_reset`, `password_changed`, …) and result: `sent`, `failed`
/// (the server refused it or did not answer in time), `dropped` (the queue was full).
pub static MAIL: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "menshen_mail_total",
        "Mails by kind and result (sent, failed, dropped).",
        &["kind", "result"],
    )
});

/// Password checks running now (bounded by login.argon2_max_concurrent, the pool's threads).
pub static ARGON2_INFLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "menshen_argon2_inflight",
        "Password hashes being computed right now.",
    )
});

/// Password checks refused because the hashing pool and its queue were full: the login got
/// the "busy, try again in a moment" page and was not counted as a password failure.
pub static ARGON2_SHED: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "menshen_argon2_shed_total",
        "Logins answered 'busy, try again' because every password-hashing thread and queue place was taken.",
    )
    .unwrap_or_else(|_| std::process::abort());
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
});

/// Client connections counted against the caps (from their first request until they close).
pub static CLIENT_CONNECTIONS: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "menshen_client_connections",
        "Open client connections counted against server.max_connections (from their first request).",
    )
});

/// Connections refused with a 503 because a cap was reached, by which cap.
pub static CONNECTIONS_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "menshen_connections_refused_total",
        "Client connections answered 503 and closed because a cap was reached (total, per_address).",
        &["cap"],
    )
});

fn gauge(name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|_| std::process::abort());
    let _ = REGISTRY.register(Box::new(g.clone()));
    g
}

/// Session lookups on the proxy path by how the local session cache answered: `hit` (no
/// Redis round trip), `miss` (read from Redis, then kept), `bypass` (the cache is off because
/// invalidations are not being received).
static SESSION_CACHE_LOOKUPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "menshen_session_cache_lookups_total",
        "Session lookups on the proxy path by cache result (hit, miss, bypass).",
        &["result"],
    )
});

/// Handles resolved once: a label lookup per request is not free.
pub static SESSION_CACHE_HIT: LazyLock<IntCounter> =
    LazyLock::new(|| SESSION_CACHE_LOOKUPS.with_label_values(&["hit"]));
pub static SESSION_CACHE_MISS: LazyLock<IntCounter> =
    LazyLock::new(|| SESSION_CACHE_LOOKUPS.with_label_values(&["miss"]));
pub static SESSION_CACHE_BYPASS: LazyLock<IntCounter> =
    LazyLock::new(|| SESSION_CACHE_LOOKUPS.with_label_values(&["bypass"]));

/// Invalidation messages received from other instances (and this one).
pub static SESSION_CACHE_INVALIDATIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    let c = IntCounter::new(
        "menshen_session_cache_invalidations_total",
        "Session invalidation messages received over Redis pub/sub.",
    )
    .unwrap_or_else(|_| std::process::abort());
    let _ = REGISTRY.register(Box::new(c.clone()));
    c
});

/// 1 while the invalidation subscription is live (the cache may serve), 0 while it is bypassed.
pub static SESSION_CACHE_LIVE: LazyLock<IntGauge> = LazyLock::new(|| {
    gauge(
        "menshen_session_cache_live",
        "1 while session cache invalidations are being received, else 0 (cache bypassed).",
    )
});

/// The trust store and lists the CRL gauges describe: the running gateway's (the latest
/// started, in a test process that starts several).
static CRL_WATCH: RwLock<Option<Weak<Certificates>>> = RwLock::new(None);

/// Makes the CRL gauges describe `certificates`.
pub fn watch_crls(certificates: &Arc<Certificates>) {
    let mut slot = CRL_WATCH.write().unwrap_or_else(|p| p.into_inner());
    *slot = Some(Arc::downgrade(certificates));
}

/// `menshen_certificate_crl_age_seconds{issuer}` and
/// `menshen_certificate_cas_without_current_crl`, computed at each scrape (an age set at
/// refresh time would stand still between refreshes, hiding exactly the failure to alert
/// on). The `issuer` label is [`crate::certificates::ca_label`]: from the trust store.
struct CrlCollector {
    age: IntGaugeVec,
    uncovered: IntGauge,
}

impl CrlCollector {
    fn new() -> Option<Self> {
        Some(CrlCollector {
            age: IntGaugeVec::new(
                Opts::new(
                    "menshen_certificate_crl_age_seconds",
                    "Seconds since thisUpdate of the newest CRL held, per CA a certificate check needs one from.",
                ),
                &["issuer"],
            )
            .ok()?,
            uncovered: IntGauge::new(
                "menshen_certificate_cas_without_current_crl",
                "CAs without a current CRL (none, or past nextUpdate plus certificate.crl_grace): their certificates are refused.",
            )
            .ok()?,
        })
    }
}

impl Collector for CrlCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.age.desc();
        descs.extend(self.uncovered.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let watched = CRL_WATCH
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        self.age.reset();
        let mut without = 0;
        if let Some(certificates) = watched {
            for ca in certificates.crl_ages() {
                if let Some(age) = ca.age_secs {
                    self.age.with_label_values(&[ca.label.as_str()]).set(age);
                }
                if !ca.current {
                    without += 1;
                }
            }
        }
        self.uncovered.set(without);
        let mut families = self.age.collect();
        families.extend(self.uncovered.collect());
        families
    }
}

static CRL_GAUGES: LazyLock<()> = LazyLock::new(|| {
    if let Some(collector) = CrlCollector::new() {
        let _ = REGISTRY.register(Box::new(collector));
    }
});

/// Touches every metric so the first scrape shows them all.
pub fn init() {
    LazyLock::force(&CRL_GAUGES);
    LazyLock::force(&REQUESTS);
    LazyLock::force(&LOGINS);
    LazyLock::force(&ARGON2_INFLIGHT);
    LazyLock::force(&ARGON2_SHED);
    LazyLock::force(&CLIENT_CONNECTIONS);
    for cap in ["total", "per_address"] {
        CONNECTIONS_REFUSED.with_label_values(&[cap]);
    }
    LazyLock::force(&SESSION_CACHE_HIT);
    LazyLock::force(&SESSION_CACHE_MISS);
    LazyLock::force(&SESSION_CACHE_BYPASS);
    LazyLock::force(&SESSION_CACHE_INVALIDATIONS);
    LazyLock::force(&SESSION_CACHE_LIVE);
    for result in [
        "issued",
        "redeemed",
        "replayed",
        "expired",
        "wrong_host",
        "unknown",
        "session_ended",
    ] {
        HANDOFFS.with_label_values(&[result]);
    }
}

/// The metrics endpoint: Prometheus text for any path.
pub struct MetricsApp;

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, _session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        let encoder = TextEncoder::new();
        let status = match encoder.encode(&REGISTRY.gather(), &mut body) {
            Ok(()) => 200,
            Err(_) => 500,
        };
        Response::builder()
            .status(status)
            .header("Content-Type", encoder.format_type())
            .header("Content-Length", body.len())
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
