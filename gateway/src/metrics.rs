//! Prometheus metrics, served on their own listener (never the public one).
//!
//! Labels never carry a secret or a user-chosen value: only site names from the config and
//! fixed outcome words.

use std::sync::LazyLock;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::{Encoder, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

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

/// Password checks running now (bounded by login.argon2_max_concurrent).
pub static ARGON2_INFLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    let g = IntGauge::new(
        "menshen_argon2_inflight",
        "Password hashes being computed right now.",
    )
    .unwrap_or_else(|_| std::process::abort());
    let _ = REGISTRY.register(Box::new(g.clone()));
    g
});

/// Touches every metric so the first scrape shows them all.
pub fn init() {
    LazyLock::force(&REQUESTS);
    LazyLock::force(&LOGINS);
    LazyLock::force(&ARGON2_INFLIGHT);
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
