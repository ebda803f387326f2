//! Helpers for Menshen's end-to-end suites: they start the real `menshen` binary on free
//! ports, against a real upstream HTTP server, real Redis (a private key prefix, or a private
//! `redis-server` when a test must kill it), and a real SQLite file or PostgreSQL database
//! (one per test, dropped afterwards). Nothing here is a mock.
//!
//! # Layout
//! - [`upstream`]: a real HTTP server that echoes what it received, as JSON.
//! - [`gateway`]: writes a config, seeds accounts through the CLI, runs `menshen run`.
//! - [`backends`]: SQLite / PostgreSQL databases and Redis prefixes or private servers.
//! - [`client`]: an HTTP client that never follows redirects, and a login helper.
//! - [`twfido`]: the TW FidO stand-in process and its test controls.
//! - [`smtp`]: a real SMTP server (aiosmtpd) that records what it receives.
//! - [`pki`]: the test PKI's certificate and CRL files for a `[certificate]` table.

pub mod backends;
pub mod client;
pub mod gateway;
pub mod oidc;
pub mod pki;
pub mod smtp;
pub mod twfido;
pub mod upstream;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `menshen` binary built by `cargo build` in the same target directory as this test.
pub fn menshen_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MENSHEN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/test-xxxx -> target/debug/menshen
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("menshen");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p menshen` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A short random string for names (database, key prefix).
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    rand::fill(&mut b[..]);
    format!(
        "{prefix}{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// Polls `check` until it returns true or `within` passes; panics with `what` on timeout.
/// For waiting on something that happens in the background, never for timing assertions.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < within, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where a test writes what people may want to look at afterwards (screenshots, logs).
pub fn output_dir() -> PathBuf {
    let root = std::env::var("MENSHEN_TEST_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("test-output")
        });
    let _ = std::fs::create_dir_all(&root);
    root
}

/// A value shaped like a real session id (43 base64url characters) that no gateway issued.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b[..]);
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s: String = b.iter().map(|x| A[usize::from(*x) % 64] as char).collect();
    s.push_str("abcdefghijk");
    s.truncate(43);
    s
}
