//! Prometheus metrics, served on their own listener (never the public one).
//!
//! Labels never carry a secret or a user-chosen value: only site names from the config and
//! fixed outcome words.

use std::sync::LazyLock;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

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

/// Touches every metric so the first scrape shows them all.
pub fn init() {
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
