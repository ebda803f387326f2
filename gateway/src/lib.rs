//! Menshen (門神): a two-factor authentication gateway in front of legacy school web systems.
//!
//! # Layout
//!
//! - [`cli`] parses the command line and wires the other parts together; `main.rs` only calls it.
//! - [`server`] builds the Pingora server (listeners, the proxy service, metrics, demo app).
//! - [`proxy`] is the `ProxyHttp` implementation: it dispatches each request to a small unit
//!   that decides (routing, access rules, the session, identity headers) and never decides itself.
//! - [`handlers`] answers requests under the reserved `/.menshen/` prefix: one module per flow.
//! - [`connections`] caps open client connections, overall and per address.
//! - [`respond`] is the one place that turns outcomes into HTTP responses (status, page,
//!   redirect, security headers).
//! - [`sessions`] holds the server-side session model and its stores (Redis, in-process),
//!   and the proxy path's short-lived session cache with its pub/sub invalidation.
//! - [`volatile`] holds short-lived shared values (captcha answers, QR secrets, counters);
//!   [`regulation`] turns failure counts into suspensions and throttles; [`captcha`] draws
//!   and checks the login captcha.
//! - [`certificates`] holds the citizen-certificate trust store and refreshes the CRLs.
//! - [`mobile`] holds the mobile citizen certificate (TW FidO) client and pending sign-ins.
//! - [`accounts`] is the SQL account store (SQLite or PostgreSQL) with its migrations.
//! - [`passwords`] hashes and verifies passwords with argon2id off the async workers, on the
//!   idle-priority pool of [`low_priority`], shedding what it cannot take.
//! - [`identity`] strips spoofed identity headers and builds the verified ones.
//! - [`routing`] maps a request's Host to its site.
//! - [`forward_auth`] answers `GET /.menshen/auth` for a proxy in front (nginx `auth_request`).
//! - [`sso`] is single sign-on: the portal host, its URLs and the hand-off codes.
//! - [`demo`] runs the gateway in front of a built-in demo legacy app with no set-up.

pub mod accounts;
pub mod captcha;
pub mod certificates;
pub mod cli;
pub mod clock;
pub mod connections;
pub mod cookies;
pub mod demo;
pub mod forms;
pub mod forward_auth;
pub mod handlers;
pub mod identity;
pub mod low_priority;
pub mod mail;
pub mod metrics;
pub mod mobile;
pub mod oidc;
pub mod passwords;
pub mod proxy;
pub mod random;
pub mod recovery;
pub mod redis_conn;
pub mod regulation;
pub mod respond;
pub mod routing;
pub mod server;
pub mod sessions;
pub mod sso;
pub mod state;
pub mod volatile;
