//! The validated configuration the gateway runs on. Every value here has passed its checks;
//! nothing in this module parses text from the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use menshen_policies::access::AccessRules;
use menshen_policies::password::PasswordPolicy;

/// The whole configuration of one gateway process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Pingora worker threads (`[server] threads`).
    pub threads: usize,
    /// Limits on client connections (`[server]`).
    pub connections: ConnectionConfig,
    /// Public listeners; at least one.
    pub listeners: Vec<Listener>,
    /// Where Prometheus metrics are served. Never one of the public listeners, so the metrics
    /// are not reachable from the Internet by accident.
    pub metrics: Option<SocketAddr>,
    pub session: SessionConfig,
    pub store: StoreConfig,
    pub login: LoginConfig,
    pub lockout: LockoutConfig,
    pub captcha: CaptchaMode,
    pub otp: OtpConfig,
    pub oidc: Vec<OidcProvider>,
    /// Citizen digital certificate (自然人憑證) login; `None` turns it off.
    pub certificate: Option<CertificateConfig>,
    /// Mobile citizen certificate (行動自然人憑證) login; `None` turns the method off.
    pub mobile_certificate: Option<MobileCertificateConfig>,
    /// Identity header names used for sites that do not override them.
    pub headers: HeaderNames,
    /// Protected sites; at least one, each host name in exactly one site.
    pub sites: Vec<Site>,
    /// The single sign-on portal; `None` keeps every site's pages on its own host.
    pub portal: Option<Portal>,
    /// `GET /.menshen/auth` for a proxy in front (nginx `auth_request`, …); `None` turns it off.
    pub forward_auth: Option<ForwardAuth>,
    /// Outgoing mail (password reset links, notices); `None` turns those features off.
    pub mail: Option<MailConfig>,
}

/// `[mail]`: how Menshen sends mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The sender, `"門神 Menshen <noreply@school.example>"` or a bare address; checked to be
    /// one RFC 5322 mailbox.
    pub from: String,
    pub transport: MailTransport,
    /// How long one delivery may take, connection included (1s to 120s, default 15s).
    pub timeout: Duration,
    /// The origin put in mailed links (`https://login.school.example`), when the Host a request
    /// came with must not be trusted for that; default: the portal, else the request's host
    /// when it is one of the configured hosts.
    pub link_base: Option<String>,
}

/// Where mail goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// An SMTP submission server.
    Smtp(SmtpServer),
    /// A directory that receives each message as an `.eml` file (development, the demo).
    Outbox(PathBuf),
}

/// `mail.smtp_url`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub user: Option<String>,
    pub password: Option<MailPassword>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// `smtps://`: TLS from the first byte (port 465).
    Tls,
    /// `smtp://…?tls=none`: no encryption; accepted only for a loopback server.
    None,
}

/// The SMTP password. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct MailPassword(pub String);

impl std::fmt::Debug for MailPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailPassword(..)")
    }
}

/// `[forward_auth]`: who may ask Menshen to decide for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuth {
    /// The proxies' addresses: only they may call `GET /.menshen/auth`, and only their
    /// `X-Forwarded-Proto: https` makes a plain-HTTP request count as HTTPS.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[portal]`: the host where people sign in once for every site (單一簽入).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// Canonical `name` or `name:port` (lowercase, no trailing dot); a host of no site.
    pub host: String,
}

/// Limits on client connections: each open connection costs memory, so an address that opens
/// thousands and leaves them idle must not be able to take the gateway's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// An idle keep-alive connection is closed after this long without a new request;
    /// default 60 s. (Pingora would otherwise keep it open for ever.)
    pub keepalive_timeout: Duration,
    /// Open client connections at most, over all addresses; default 10,000.
    pub max_total: usize,
    /// Open client connections at most from one IP address; default 1,000 (a whole school
    /// behind one NAT address opens a few per browser).
    pub max_per_address: usize,
    /// Bytes of socket read buffer Pingora keeps for each client connection, below HTTP and
    /// TLS, for the connection's whole life; default 0 (none). Pingora's own default, 64 KiB,
    /// was two thirds of what an idle connection cost, and buys nothing here: the HTTP/1
    /// parser and rustls read into buffers of their own.
    pub read_buffer: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            keepalive_timeout: Duration::from_secs(60),
            max_total: 10_000,
            max_per_address: 1_000,
            read_buffer: 0,
        }
    }
}

/// One public listening socket.
#[derive(Debug, Clone)]
pub struct Listener {
    pub address: SocketAddr,
    /// Serve HTTPS with these files; plain HTTP when absent.
    pub tls: Option<TlsFiles>,
}

/// PEM files for a TLS listener. Checked to exist and be readable when the configuration is
/// loaded (unless [`crate::Options::check_files`] is off), so a typo fails `check-config`
/// rather than the restart.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

/// Session lifetimes and the cookie mode.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A session unused for this long ends; default 30 minutes.
    pub idle_timeout: Duration,
    /// A session ends this long after login however busy it is; default 8 hours, never less
    /// than `idle_timeout`.
    pub absolute_timeout: Duration,
    /// Plain-HTTP development mode: the cookie drops the `__Host-` prefix and `Secure`.
    /// Default false. Allowed even with TLS listeners (it only weakens the cookie); whether
    /// plain listeners get a cookie at all is the gateway's decision.
    pub insecure_dev_cookie: bool,
}

/// Where state lives.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `redis://` or `rediss://` URL for sessions, lockout counters and one-time values; when
    /// absent they live in this process, which is correct only for a single instance.
    pub redis: Option<String>,
    /// Prefix of every Redis key, so several deployments can share one Redis; non-empty.
    pub redis_prefix: String,
    /// `sqlite:…`, `postgres://…` or `postgresql://…` URL of the account database; may hold
    /// a password substituted from the environment, so never log it.
    pub database: String,
}

/// The login pages and password handling.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// How many Argon2 hashes may run at once (threads at idle CPU priority); each takes tens of
    /// MiB and a core, so this bounds what a flood of login attempts can cost.
    pub argon2_max_concurrent: usize,
    /// How many more checks may wait for a hashing thread. Past threads + queue a login gets
    /// "busy, try again in a moment" at once: waiting longer helps nobody in a flood.
    pub argon2_queue: usize,
    /// `"zh-TW"` (default) or `"en"`: the language before the user picks one.
    pub default_language: String,
    /// Operator-written notice shown on the login page.
    pub notice: Option<String>,
    /// Support desk contact and hours, shown on the login page and the help page.
    pub support: Option<String>,
    /// Longer operator text for the help page (`/.menshen/help`): whom to ask, office hours.
    pub help: Option<String>,
    /// `[login.password]`: the rules for new passwords (set with `menshen account`). Checked
    /// against the NIST SP 800-63B rev. 4 floors on load: `min_length` at least 8,
    /// `max_length` at least 64, `min_strength` 1 to 4.
    pub password_policy: PasswordPolicy,
}

/// Names of the identity headers sent upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderNames {
    pub user: String,
    pub name: String,
    pub roles: String,
    pub school: String,
    pub auth_method: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        Self {
            user: "X-Menshen-User".to_owned(),
            name: "X-Menshen-Name".to_owned(),
            roles: "X-Menshen-Roles".to_owned(),
            school: "X-Menshen-School".to_owned(),
            auth_method: "X-Menshen-Auth-Method".to_owned(),
        }
    }
}

/// One protected legacy application.
#[derive(Debug, Clone)]
pub struct Site {
    /// Unique name, used in logs and metric labels.
    pub name: String,
    /// Canonical `name` or `name:port` entries (lowercase, no trailing dot).
    pub hosts: Vec<String>,
    /// Resolved once at load time, so a DNS outage later cannot move the traffic.
    pub upstreams: Vec<SocketAddr>,
    pub upstream_tls: bool,
    /// SNI for the upstream TLS handshake; the gateway uses the first host when absent.
    pub upstream_sni: Option<String>,
    pub rules: AccessRules,
    /// `allow_double_encoded_separators`: pass paths holding an encoded '%' that encodes a dot,
    /// slash or backslash (`%252e`, `%252f`, `%255c`). Default false: an upstream that decodes
    /// twice would serve another path than the rules saw; only an app known to decode once
    /// and to need such names should turn it on.
    pub allow_double_encoded_separators: bool,
    /// Forwarding, routing and client-address headers removed from every request, folded
    /// (lower case, `_` as `-`): `menshen_policies::headers::FORWARDING` less the site's
    /// `keep_headers`, plus its `strip_headers`.
    pub untrusted_headers: Vec<String>,
    /// The global `[headers]` with this site's `[site.headers]` overrides applied.
    pub headers: HeaderNames,
    /// The name people know the system by (`display_name`, e.g. "臺南市學籍管理系統"), shown
    /// in the pages' header instead of `name`.
    pub display_name: Option<String>,
}

/// Suspensions after repeated failures (the registry manual: 3 wrong passwords or 3 wrong OTP
/// codes suspend the account for 15 minutes), and the per-client-address throttle on top.
#[derive(Debug, Clone)]
pub struct LockoutConfig {
    /// Consecutive wrong passwords that suspend an account; default 3.
    pub password_failures: u32,
    /// Consecutive wrong OTP codes that suspend an account; default 3.
    pub otp_failures: u32,
    /// How long a suspension lasts; default 15 minutes.
    pub duration: Duration,
    /// Login attempts (password or OTP) one client address may make per minute before it is
    /// slowed with a 429; 0 turns the throttle off. Default 30.
    pub ip_attempts_per_minute: u32,
    /// Client networks the throttle never applies to (a school's own NAT address, say).
    /// Matched against the canonical client address (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub trusted_networks: Vec<ipnet::IpNet>,
}

/// When the login form shows a captcha (驗證碼).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaMode {
    /// On every login form (what the registry system does; the default).
    Always,
    /// Only after a failed login from the same client address.
    AfterFailure,
    Off,
}

/// OTP (TOTP) settings.
#[derive(Debug, Clone)]
pub struct OtpConfig {
    /// Shown as the account's issuer in the authenticator app; default "Menshen".
    pub issuer: String,
    /// The keyring that seals TOTP secrets at rest: comma-separated `ID:BASE64KEY` entries,
    /// the first one sealing new values (rotation: put a new key first, keep the old ones
    /// until `menshen keys reseal` has run). Never logged.
    pub keys: String,
}

/// An OpenID Connect provider people may log in with after binding it (Google, the Ministry's
/// education cloud 教育雲端帳號, ...).
#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// Used in paths (`/.menshen/oidc/{id}/start`) and in the auth-method header
    /// (`oidc:{id}+otp`): lowercase letters, digits and '-'.
    pub id: String,
    /// Shown in settings and messages, e.g. "Google 帳號".
    pub display_name: String,
    /// The login page's button, e.g. "Google帳號登入".
    pub button_label: String,
    /// Discovery starts at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// From the environment (`${GOOGLE_CLIENT_SECRET}`); never logged.
    pub client_secret: String,
    /// Always includes `openid`.
    pub scopes: Vec<String>,
    /// The ID-token claim shown for a bound external account; default "email".
    pub claim: String,
    /// Whether OTP must follow the provider's login (default true; the manual requires it).
    pub require_otp: bool,
}

/// Where a CRL comes from: a file, or an http(s) URL fetched by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlSource {
    File(PathBuf),
    Url(String),
}

/// `[certificate]`: citizen digital certificate (自然人憑證, MOICA card) binding and login.
#[derive(Debug, Clone)]
pub struct CertificateConfig {
    /// Trust anchors (the GRCA root), PEM or DER files; at least one.
    pub trust_anchors: Vec<PathBuf>,
    /// Issuing CAs (MOICA G2, G3, ...), trusted only through an anchor.
    pub intermediates: Vec<PathBuf>,
    /// Revocation lists, refreshed every `crl_refresh`.
    pub crls: Vec<CrlSource>,
    /// How often the CRLs are fetched again; default 6 hours.
    pub crl_refresh: Duration,
    /// How long past its nextUpdate a CRL still counts as current; default 12 hours, at
    /// most 7 days. After that a CA's cards are refused with `revocation_unavailable`
    /// (unless OCSP answers good for the card) until a current list is loaded.
    pub crl_grace: Duration,
    /// Certificate policy OIDs every card certificate must carry; empty: no requirement.
    pub required_policies: Vec<String>,
    /// When true (the default), the certificate's name and national-ID last four digits
    /// must equal the account's display name and `id_last4`, where the account holds them.
    pub require_identity_match: bool,
    /// Where users download the HiPKI component (shown by the pages).
    pub component_download_url: Option<String>,
    /// Origin of the HiPKI Local Sign Server the pages talk to; default
    /// `http://localhost:61161` (only tests and demos change it).
    pub component_url: String,
    /// The oldest component version the check table accepts; default `1.3.4`.
    pub component_min_version: String,
    /// Whether card certificates are also checked with the CA's OCSP responder; default off.
    pub ocsp: OcspMode,
    /// The responder to ask, overriding the URL in each certificate's Authority Information
    /// Access extension (a school that must go through a local relay, or a test).
    pub ocsp_url: Option<String>,
    /// How long one OCSP request may take, connection included; default 3 seconds. The
    /// user's login waits this long at most when the responder does not answer.
    pub ocsp_timeout: Duration,
}

/// `[mobile_certificate]`: the mobile citizen certificate (行動自然人憑證, TW FidO) through
/// MOI's SP API. Its certificates are verified with the `[certificate]` trust store.
#[derive(Debug, Clone)]
pub struct MobileCertificateConfig {
    /// MOI's SP API base, without a trailing `/` (production `https://fidoapi.moi.gov.tw`);
    /// the client appends `/moise/sp/...`. Configurable because the UAT host is disputed.
    pub api_url: String,
    /// The SP service ID MOI issued with the key.
    pub sp_service_id: String,
    /// The AES-256 key that makes and opens the request and response checksums.
    pub aes_key: MobileKey,
    /// How long a ticket lives (MOI's `time_limit`) and how long the gateway polls;
    /// whole seconds from 30 to 600, default 120.
    pub time_limit: Duration,
    /// How long one call to MOI may take, connection included (1s to 30s, default 10s): a
    /// person waits this long at most before "temporarily unavailable".
    pub request_timeout: Duration,
}

/// The 32-byte AES key shared with MOI. Whoever holds it can push sign-in prompts to any ID
/// in the school's name, so its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct MobileKey(pub [u8; 32]);

impl std::fmt::Debug for MobileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MobileKey(..)")
    }
}

/// `certificate.ocsp`: what an OCSP responder's answer (or its silence) means. A CRL listing
/// refuses a certificate in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OcspMode {
    /// No OCSP request; the CRLs alone decide (the default).
    #[default]
    Off,
    /// Ask the responder: `good` or `revoked` decides; when it cannot answer (unreachable,
    /// slow, malformed, badly signed, stale, `unknown`) the CRLs decide and the failure is
    /// logged.
    Prefer,
    /// Ask the responder and refuse the certificate when it cannot answer: fail closed.
    Require,
}
