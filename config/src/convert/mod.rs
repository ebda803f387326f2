//! Walks the spanned TOML document and builds the validated [`Config`], reporting every
//! problem on the way. Values that fail a check are replaced by their defaults so the walk can
//! go on and find the next problem; the result is only handed out when no problem was found.

mod certificate;
mod factors;
mod forward_auth;
mod headers;
mod mail;
mod mobile;
mod oidc;
mod portal;
mod site;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use menshen_policies::password::{
    MAX_LENGTH_FLOOR, MIN_LENGTH_FLOOR, MIN_STRENGTH_RANGE, PasswordPolicy,
};
use toml::Spanned;
use toml::de::DeTable;

use crate::model::{
    Config, ConnectionConfig, Listener, LoginConfig, SessionConfig, StoreConfig, TlsFiles,
};
use crate::reader::{At, Cx, Table, Text};

use self::headers::{HeaderSet, read_headers};

const DEFAULT_THREADS: usize = 2;
const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(8 * 3600);
const DEFAULT_REDIS_PREFIX: &str = "menshen:";
const DEFAULT_DATABASE: &str = "sqlite://menshen.db";
const DEFAULT_ARGON2_CONCURRENT: usize = 2;
/// A short queue: at ~20 ms per check, 4 waiting checks add well under a second.
const DEFAULT_ARGON2_QUEUE: usize = 4;
const LANGUAGES: &[&str] = &["zh-TW", "en"];
/// Longest password the policy may allow; Argon2 hashes whatever it is given, so an unbounded
/// maximum would let one login request cost arbitrary CPU.
const PASSWORD_LENGTH_LIMIT: i64 = 1024;

/// Converts the parsed document; problems go to `cx` and the returned value is meaningless
/// when there are any.
pub(crate) fn convert(document: &Spanned<DeTable<'_>>, cx: &mut Cx<'_>) -> Config {
    let mut root = Table::root(document);

    let (threads, connections) = server(&mut root, cx);
    let (listeners, tls_configured) = listeners(&mut root, cx);
    let metrics = metrics(&mut root, cx, &listeners);
    let session = session(&mut root, cx);
    let store = store(&mut root, cx);
    let login = login(&mut root, cx);
    let lockout = factors::lockout(&mut root, cx);
    let captcha = factors::captcha(&mut root, cx);
    let otp = factors::otp(&mut root, cx);
    let oidc = oidc::providers(&mut root, cx);
    let certificate = certificate::certificate(&mut root, cx);
    let mobile_certificate = mobile::mobile_certificate(&mut root, cx, certificate.is_some());
    let headers = match root.table(cx, "headers") {
        Some(table) => {
            let overrides = read_headers(cx, table);
            HeaderSet::defaults().apply(cx, overrides)
        }
        None => HeaderSet::defaults(),
    };
    let sites = site::sites(&mut root, cx, &headers);
    let certificates: Vec<&std::path::Path> = listeners
        .iter()
        .filter_map(|l| l.value.tls.as_ref())
        .map(|t| t.certificate.as_path())
        .collect();
    let portal = portal::portal(
        &mut root,
        cx,
        &sites,
        tls_configured || session.insecure_dev_cookie,
        &certificates,
    );
    let forward_auth = forward_auth::forward_auth(&mut root, cx);
    let mail = mail::mail(&mut root, cx);
    root.finish(cx);

    Config {
        threads,
        connections,
        listeners: listeners.into_iter().map(|l| l.value).collect(),
        metrics,
        session,
        store,
        login,
        lockout,
        captcha,
        otp,
        oidc,
        certificate,
        mobile_certificate,
        headers: headers.names,
        sites,
        portal,
        forward_auth,
        mail,
    }
}

fn server(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> (usize, ConnectionConfig) {
    let mut connections = ConnectionConfig::default();
    let Some(mut table) = root.table(cx, "server") else {
        return (DEFAULT_THREADS, connections);
    };
    let threads = table
        .integer(cx, "threads", 1..=256)
        .and_then(|n| usize::try_from(n.value).ok())
        .unwrap_or(DEFAULT_THREADS);
    if let Some(d) = table.duration(cx, "keepalive_timeout") {
        if d.value > Duration::from_secs(3600) {
            cx.error(&d.span, "`server.keepalive_timeout` must be at most 1h");
        } else {
            connections.keepalive_timeout = d.value;
        }
    }
    if let Some(n) = table
        .integer(cx, "max_connections", 1..=1_000_000)
        .and_then(|n| usize::try_from(n.value).ok())
    {
        connections.max_total = n;
    }
    if let Some(n) = table
        .integer(cx, "max_connections_per_address", 1..=1_000_000)
        .and_then(|n| usize::try_from(n.value).ok())
    {
        connections.max_per_address = n;
    }
    if let Some(n) = table
        .integer(cx, "read_buffer", 0..=1_048_576)
        .and_then(|n| usize::try_from(n.value).ok())
    {
        connections.read_buffer = n;
    }
    table.finish(cx);
    (threads, connections)
}

/// The listeners, and whether any of them has a `tls` table (even one whose files could not
/// be read: that problem is reported once, where it is).
fn listeners(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> (Vec<At<Listener>>, bool) {
    let tables = root.tables(cx, "listen");
    if tables.is_empty() {
        cx.error(
            &root.span(),
            "at least one [[listen]] table with an `address` is required",
        );
    }
    let mut listeners: Vec<At<Listener>> = Vec::new();
    let mut tls_configured = false;
    for mut table in tables {
        table.require(cx, "address");
        let address = table
            .string(cx, "address")
            .and_then(|text| socket_address(cx, &table.name("address"), &text));
        let tls = table.table(cx, "tls").and_then(|tls| {
            tls_configured = true;
            tls_files(cx, tls)
        });
        table.finish(cx);
        let Some(address) = address else { continue };
        if address.value.port() != 0
            && let Some(earlier) = listeners
                .iter()
                .find(|l| sockets_overlap(l.value.address, address.value))
        {
            let line = cx.report.line_of(&earlier.span);
            cx.error(
                &address.span,
                format!(
                    "listen address {} overlaps the listener on line {line}",
                    address.value
                ),
            );
        }
        listeners.push(At {
            value: Listener {
                address: address.value,
                tls,
            },
            span: address.span,
        });
    }
    (listeners, tls_configured)
}

fn tls_files(cx: &mut Cx<'_>, mut table: Table<'_, '_>) -> Option<TlsFiles> {
    table.require(cx, "certificate");
    table.require(cx, "key");
    let certificate = table
        .string(cx, "certificate")
        .and_then(|text| readable_file(cx, &table.name("certificate"), text));
    let key = table
        .string(cx, "key")
        .and_then(|text| readable_file(cx, &table.name("key"), text));
    table.finish(cx);
    Some(TlsFiles {
        certificate: certificate?,
        key: key?,
    })
}

/// A path that, when file checks are on, names a readable regular file. Checked here so that
/// `check-config` catches a wrong path before a restart does.
fn readable_file(cx: &mut Cx<'_>, name: &str, text: Text) -> Option<PathBuf> {
    if text.value.is_empty() {
        cx.error(&text.span, format!("`{name}` must not be empty"));
        return None;
    }
    let path = PathBuf::from(&text.value);
    if cx.check_files {
        let problem = match std::fs::File::open(&path).and_then(|f| f.metadata()) {
            Ok(metadata) if metadata.is_file() => None,
            Ok(_) => Some("is not a regular file".to_owned()),
            Err(error) => Some(format!("cannot be read: {error}")),
        };
        if let Some(problem) = problem {
            cx.error(&text.span, format!("`{name}`: {} {problem}", text.shown()));
            return None;
        }
    }
    Some(path)
}

fn socket_address(cx: &mut Cx<'_>, name: &str, text: &Text) -> Option<At<SocketAddr>> {
    match text.value.parse::<SocketAddr>() {
        Ok(address) => Some(At {
            value: address,
            span: text.span.clone(),
        }),
        Err(_) => {
            cx.error(
                &text.span,
                format!(
                    "`{name}`: {} is not an IP address with port, such as \"0.0.0.0:443\" or \
                     \"[::]:443\"",
                    text.shown()
                ),
            );
            None
        }
    }
}

/// Whether binding both addresses would conflict: same port, and the same IP or a wildcard
/// of the same family on either side.
fn sockets_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn metrics(
    root: &mut Table<'_, '_>,
    cx: &mut Cx<'_>,
    listeners: &[At<Listener>],
) -> Option<SocketAddr> {
    let mut table = root.table(cx, "metrics")?;
    table.require(cx, "address");
    let address = table
        .string(cx, "address")
        .and_then(|text| socket_address(cx, &table.name("address"), &text));
    table.finish(cx);
    let address = address?;
    if address.value.port() != 0
        && let Some(listener) = listeners
            .iter()
            .find(|l| sockets_overlap(l.value.address, address.value))
    {
        let line = cx.report.line_of(&listener.span);
        cx.error(
            &address.span,
            format!(
                "metrics address {} overlaps the public listener on line {line}; metrics must \
                 have a listener of their own",
                address.value
            ),
        );
    }
    Some(address.value)
}

fn session(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> SessionConfig {
    let mut session = SessionConfig {
        idle_timeout: DEFAULT_IDLE,
        absolute_timeout: DEFAULT_ABSOLUTE,
        insecure_dev_cookie: false,
    };
    let Some(mut table) = root.table(cx, "session") else {
        return session;
    };
    let idle = table.duration(cx, "idle_timeout");
    let absolute = table.duration(cx, "absolute_timeout");
    if let Some(dev) = table.bool(cx, "insecure_dev_cookie") {
        session.insecure_dev_cookie = dev;
    }
    if let Some(idle) = &idle {
        session.idle_timeout = idle.value;
    }
    if let Some(absolute) = &absolute {
        session.absolute_timeout = absolute.value;
    }
    if session.absolute_timeout < session.idle_timeout {
        let span = absolute
            .map(|a| a.span)
            .or(idle.map(|i| i.span))
            .unwrap_or_else(|| table.span());
        cx.error(
            &span,
            format!(
                "`session.absolute_timeout` ({}) must not be shorter than \
                 `session.idle_timeout` ({})",
                show_duration(session.absolute_timeout),
                show_duration(session.idle_timeout)
            ),
        );
    }
    table.finish(cx);
    session
}

fn show_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn store(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> StoreConfig {
    let mut store = StoreConfig {
        redis: None,
        redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
        database: DEFAULT_DATABASE.to_owned(),
    };
    let Some(mut table) = root.table(cx, "store") else {
        return store;
    };
    // The URLs may carry passwords, so messages about them never quote the value.
    if let Some(redis) = table.string(cx, "redis") {
        if redis.value.starts_with("redis://") || redis.value.starts_with("rediss://") {
            store.redis = Some(redis.value);
        } else {
            cx.error(
                &redis.span,
                "`store.redis` must be a URL starting with redis:// or rediss://",
            );
        }
    }
    if let Some(prefix) = table.string(cx, "redis_prefix") {
        if prefix.value.is_empty() {
            cx.error(
                &prefix.span,
                "`store.redis_prefix` must not be empty; it keeps Menshen's keys apart from \
                 other users of the same Redis",
            );
        } else {
            store.redis_prefix = prefix.value;
        }
    }
    if let Some(database) = table.string(cx, "database") {
        if ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database.value.starts_with(scheme))
        {
            store.database = database.value;
        } else {
            cx.error(
                &database.span,
                "`store.database` must be a URL starting with sqlite:, postgres:// or \
                 postgresql://",
            );
        }
    }
    table.finish(cx);
    store
}

fn login(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> LoginConfig {
    let mut login = LoginConfig {
        argon2_max_concurrent: DEFAULT_ARGON2_CONCURRENT,
        argon2_queue: DEFAULT_ARGON2_QUEUE,
        default_language: LANGUAGES[0].to_owned(),
        notice: None,
        support: None,
        help: None,
        password_policy: PasswordPolicy::default(),
    };
    let Some(mut table) = root.table(cx, "login") else {
        return login;
    };
    if let Some(n) = table
        .integer(cx, "argon2_max_concurrent", 1..=64)
        .and_then(|n| usize::try_from(n.value).ok())
    {
        login.argon2_max_concurrent = n;
    }
    if let Some(n) = table
        .integer(cx, "argon2_queue", 0..=1024)
        .and_then(|n| usize::try_from(n.value).ok())
    {
        login.argon2_queue = n;
    }
    if let Some(language) = table.string(cx, "default_language") {
        let name = table.name("default_language");
        if let Some(language) = choice(cx, &name, &language, LANGUAGES) {
            login.default_language = language.to_owned();
        }
    }
    // An empty text is the same as none, so a template can be kept with the value blanked.
    login.notice = table
        .string(cx, "notice")
        .map(|t| t.value)
        .filter(|t| !t.trim().is_empty());
    login.support = table
        .string(cx, "support")
        .map(|t| t.value)
        .filter(|t| !t.trim().is_empty());
    login.help = table
        .string(cx, "help")
        .map(|t| t.value)
        .filter(|t| !t.trim().is_empty());
    if let Some(password) = table.table(cx, "password") {
        login.password_policy = password_policy(cx, password);
    }
    table.finish(cx);
    login
}

/// `[login.password]`: the NIST SP 800-63B rev. 4 floors are hard limits, not advice, so a
/// configuration below them does not load.
fn password_policy(cx: &mut Cx<'_>, mut table: Table<'_, '_>) -> PasswordPolicy {
    let mut policy = PasswordPolicy::default();
    let min = table.integer(cx, "min_length", 1..=PASSWORD_LENGTH_LIMIT);
    let max = table.integer(cx, "max_length", 1..=PASSWORD_LENGTH_LIMIT);
    let min = min.filter(|n| {
        let ok = usize::try_from(n.value).is_ok_and(|n| n >= MIN_LENGTH_FLOOR);
        if !ok {
            cx.error(
                &n.span,
                format!(
                    "`login.password.min_length` ({}) must be at least {MIN_LENGTH_FLOOR}: \
                     NIST SP 800-63B allows no shorter passwords, even with a second factor",
                    n.value
                ),
            );
        }
        ok
    });
    let max = max.filter(|n| {
        let ok = usize::try_from(n.value).is_ok_and(|n| n >= MAX_LENGTH_FLOOR);
        if !ok {
            cx.error(
                &n.span,
                format!(
                    "`login.password.max_length` ({}) must be at least {MAX_LENGTH_FLOOR}: \
                     NIST SP 800-63B asks that passphrases of 64 characters fit",
                    n.value
                ),
            );
        }
        ok
    });
    if let Some(n) = min.as_ref().and_then(|n| usize::try_from(n.value).ok()) {
        policy.min_length = n;
    }
    if let Some(n) = max.as_ref().and_then(|n| usize::try_from(n.value).ok()) {
        policy.max_length = n;
    }
    if policy.min_length > policy.max_length {
        let span = max
            .map(|m| m.span)
            .or(min.map(|m| m.span))
            .unwrap_or_else(|| table.span());
        cx.error(
            &span,
            format!(
                "`login.password.max_length` ({}) must not be less than \
                 `login.password.min_length` ({})",
                policy.max_length, policy.min_length
            ),
        );
    }
    if let Some(b) = table.bool(cx, "require_upper") {
        policy.require_upper = b;
    }
    if let Some(b) = table.bool(cx, "require_lower") {
        policy.require_lower = b;
    }
    if let Some(b) = table.bool(cx, "require_digit") {
        policy.require_digit = b;
    }
    if let Some(b) = table.bool(cx, "require_symbol") {
        policy.require_symbol = b;
    }
    if let Some(b) = table.bool(cx, "reject_common") {
        policy.reject_common = b;
    }
    let strengths = i64::from(*MIN_STRENGTH_RANGE.start())..=i64::from(*MIN_STRENGTH_RANGE.end());
    if let Some(n) = table
        .integer(cx, "min_strength", strengths)
        .and_then(|n| u8::try_from(n.value).ok())
    {
        policy.min_strength = n;
    }
    table.finish(cx);
    policy
}

/// One of a fixed set of words, reported with the alternatives when it is not.
pub(super) fn choice<'c>(
    cx: &mut Cx<'_>,
    name: &str,
    text: &Text,
    options: &[&'c str],
) -> Option<&'c str> {
    let found = options.iter().find(|o| **o == text.value).copied();
    if found.is_none() {
        cx.error(
            &text.span,
            format!(
                "`{name}` must be one of {}; found {}",
                options
                    .iter()
                    .map(|o| format!("\"{o}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                text.shown()
            ),
        );
    }
    found
}
