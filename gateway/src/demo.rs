//! `menshen demo`: a working gateway in one command, with nothing to set up.
//!
//! It starts two small demo legacy apps (a registry and an HR system; each shows the identity
//! headers it receives) on free loopback ports, puts the gateway in front of them on the
//! embedded default config (in-process sessions, a temporary SQLite file) with single sign-on
//! (the portal at `login.localhost`, the apps at `registry.localhost` and `hr.localhost`, which
//! browsers resolve to loopback), seeds a staff and an AA account with fresh random passwords,
//! and prints the URLs and the credentials. `--single-host` runs the one-app demo of before:
//! any host name, each with its own sign-in pages.

use std::net::TcpListener;
use std::path::Path;

use anyhow::Context;
use async_trait::async_trait;
use http::Response;
use menshen_pages::{DemoApp, DemoAppPage};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;

use crate::accounts::{AccountStore, NewAccount};
use crate::clock;
use crate::passwords::hash_password_blocking;
use crate::random;

/// The demo's configuration: the same format operators write, so the demo exercises the
/// real loading path.
/// An OpenID Connect provider for the demo's "Google 帳號" button.
pub struct DemoOidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

/// TOML string literal (the demo's values come from the command line).
fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

/// What `menshen demo` was asked for.
pub struct DemoOptions<'a> {
    pub listen: &'a str,
    pub oidc: Option<&'a DemoOidc>,
    /// A file holding a `[certificate]` table (the HiPKI stand-in of the test suite writes one).
    pub certificate_config: Option<&'a Path>,
    /// A file holding a `[mobile_certificate]` table (and, as the TW FidO stand-in writes it,
    /// the `[certificate]` table its certificates are verified with).
    pub mobile_certificate_config: Option<&'a Path>,
    /// The portal and two apps (default), or one app on any host.
    pub single_sign_on: bool,
    /// Mail through this SMTP server instead of the outbox directory.
    pub smtp_url: Option<&'a str>,
}

/// Host names of the single sign-on demo (`*.localhost` is loopback in every browser).
const PORTAL_HOST: &str = "login.localhost";
const REGISTRY_HOST: &str = "registry.localhost";
const HR_HOST: &str = "hr.localhost";

/// The demo's configuration: the same format operators write, so the demo exercises the
/// real loading path.
fn demo_config(
    opts: &DemoOptions<'_>,
    database: &str,
    app_ports: (u16, u16),
    otp_keys: &str,
    outbox: &Path,
) -> String {
    let listen = opts.listen;
    // Mailed links go to the portal with single sign-on; on one host, to the listener (the
    // catch-all site's Host header is not trusted for links).
    let link_base = if opts.single_sign_on {
        String::new()
    } else {
        let origin = match listen.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
            _ => listen.to_string(),
        };
        format!("link_base = {}\n", toml_str(&format!("http://{origin}")))
    };
    let transport = match opts.smtp_url {
        Some(url) => format!("smtp_url = {}\n", toml_str(url)),
        None => format!(
            "# Development transport: each message is written to this directory as an .eml \
             file.\noutbox = {}\n",
            toml_str(&outbox.display().to_string())
        ),
    };
    let mail = format!(
        "[mail]\nfrom = \"門神 Menshen demo <noreply@demo.invalid>\"\n{transport}{link_base}"
    );
    let oidc = opts
        .oidc
        .map(|o| {
            format!(
                "[[oidc]]\nid = \"google\"\ndisplay_name = \"Google 帳號\"\nbutton_label = \"Google帳號登入\"\nissuer = {}\nclient_id = {}\nclient_secret = {}\n",
                toml_str(&o.issuer),
                toml_str(&o.client_id),
                toml_str(&o.client_secret)
            )
        })
        .unwrap_or_default();
    let (registry_port, hr_port) = app_ports;
    let sites = if opts.single_sign_on {
        // The listener's own address stays usable for curl (and goes to the registry).
        let mut registry_hosts = vec![REGISTRY_HOST.to_string(), "localhost".to_string()];
        if let Ok(addr) = listen.parse::<std::net::SocketAddr>()
            && !addr.ip().is_unspecified()
        {
            registry_hosts.push(match addr.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        let registry_hosts = registry_hosts
            .iter()
            .map(|h| toml_str(h))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"
[portal]
host = "{PORTAL_HOST}"

[[site]]
name = "demo-registry"
display_name = "示範學籍系統"
hosts = [{registry_hosts}]
upstreams = ["127.0.0.1:{registry_port}"]
{RULES}
[[site]]
name = "demo-hr"
display_name = "示範人事系統"
hosts = ["{HR_HOST}"]
upstreams = ["127.0.0.1:{hr_port}"]
{RULES}"#
        )
    } else {
        format!(
            r#"
[[site]]
name = "demo-registry"
display_name = "示範學籍系統"
hosts = ["*"]
upstreams = ["127.0.0.1:{registry_port}"]
{RULES}"#
        )
    };
    format!(
        r#"
[[listen]]
address = "{listen}"

[session]
idle_timeout = "30m"
absolute_timeout = "8h"
# The demo serves plain HTTP on loopback; production uses TLS and the __Host- cookie.
insecure_dev_cookie = true

[store]
database = "{database}"

[login]
argon2_max_concurrent = 1
notice = "這是 Menshen 示範環境：請以下方印出的示範帳號登入。\nThis is the Menshen demo: sign in with a demo account printed in the terminal."
support = "服務時間 週一至週五 08:30-12:00, 13:00-17:30 (demo)"

[captcha]
# The picture appears after a failed login from the same address.
mode = "after_failure"

[otp]
issuer = "Menshen demo"
# A key made for this run only: bindings do not outlive the demo.
keys = "{otp_keys}"

{mail}
{oidc}
{sites}
"#
    )
}

/// Each demo app's access rules: a public area and an area for AA accounts only.
const RULES: &str = r#"
[[site.rule]]
path = "/public/"
access = "anonymous"

[[site.rule]]
path = "/admin/"
access = "roles"
roles = ["aa"]
"#;

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

struct DemoAccount {
    login: &'static str,
    display: &'static str,
    roles: &'static str,
    password: String,
}

/// Parses the demo configuration with the operator's files appended (a `[certificate]`
/// table, a `[mobile_certificate]` table; the TW FidO stand-in writes both in one file).
/// Problems inside a file are reported with its own name and line numbers.
fn with_fragments(demo: &str, fragments: &[&Path]) -> anyhow::Result<menshen_config::Config> {
    let mut text = demo.to_string();
    // (first line of the file in `text`, its name), in order.
    let mut starts = Vec::new();
    for path in fragments {
        let fragment = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        starts.push((text.lines().count() + 1, path.display().to_string()));
        text.push('\n');
        text.push_str(&fragment);
    }
    menshen_config::parse(&text, "<demo>").map_err(|e| {
        let errors: Vec<String> = e
            .errors()
            .iter()
            .map(|err| {
                let mut err = err.clone();
                if let Some((offset, shown)) = starts.iter().rev().find(|(o, _)| err.line > *o) {
                    err.file.clone_from(shown);
                    err.line -= offset;
                }
                err.to_string()
            })
            .collect();
        let names: Vec<&str> = starts.iter().map(|(_, n)| n.as_str()).collect();
        if names.is_empty() {
            anyhow::anyhow!("the demo configuration is invalid:\n{}", errors.join("\n"))
        } else {
            anyhow::anyhow!(
                "the demo configuration with {} is invalid:\n{}",
                names.join(" and "),
                errors.join("\n")
            )
        }
    })
}

/// Runs the demo.
pub fn run(opts: DemoOptions<'_>) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("menshen-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let database = format!("sqlite://{}", dir.path().join("demo.db").display());
    let app_ports = (free_port()?, free_port()?);
    let otp_keys = menshen_otp::sealed::Keyring::generate_entry("demo");
    let outbox = dir.path().join("outbox");
    let text = demo_config(&opts, &database, app_ports, &otp_keys, &outbox);
    let fragments: Vec<&Path> = opts
        .certificate_config
        .into_iter()
        .chain(opts.mobile_certificate_config)
        .collect();
    let config = with_fragments(&text, &fragments)?;

    let accounts = vec![
        DemoAccount {
            login: "demo.staff",
            display: "王小明",
            roles: "staff",
            password: random::readable_password(12),
        },
        DemoAccount {
            login: "demo.aa",
            display: "陳校管",
            roles: "aa",
            password: random::readable_password(12),
        },
    ];
    seed(&database, &accounts)?;

    let port = opts
        .listen
        .rsplit_once(':')
        .map(|(_, p)| p)
        .unwrap_or("8080");
    let at = |host: &str| format!("http://{host}:{port}/");
    let registry_url = at(REGISTRY_HOST);
    let hr_url = at(HR_HOST);
    let mut services: Vec<crate::server::ExtraService> = Vec::new();
    let registry = if opts.single_sign_on {
        DemoLegacyApp::new(
            "示範學籍系統",
            "Demo registry",
            Some(("示範人事系統", &hr_url)),
        )
    } else {
        DemoLegacyApp::new(DemoApp::REGISTRY.name, DemoApp::REGISTRY.name_en, None)
    };
    let mut app = Service::new("demo registry app".to_string(), registry);
    app.add_tcp(&format!("127.0.0.1:{}", app_ports.0));
    services.push(Box::new(app));
    if opts.single_sign_on {
        let hr = DemoLegacyApp::new(
            "示範人事系統",
            "Demo HR system",
            Some(("示範學籍系統", &registry_url)),
        );
        let mut app = Service::new("demo HR app".to_string(), hr);
        app.add_tcp(&format!("127.0.0.1:{}", app_ports.1));
        services.push(Box::new(app));
    }

    println!("Menshen demo is running.");
    println!();
    if opts.single_sign_on {
        println!("  Open:      {registry_url}   (學籍 registry)");
        println!("             {hr_url}   (人事 HR)");
        println!(
            "  Sign in once at {}; both apps then know you.",
            at(PORTAL_HOST)
        );
        println!("  (curl: http://{}/ is the registry too.)", opts.listen);
    } else {
        println!("  Open:      http://{}/", opts.listen);
    }
    println!("  Staff:     demo.staff / {}", accounts[0].password);
    println!("  AA:        demo.aa / {}", accounts[1].password);
    println!();
    println!("  The demo legacy apps show the identity headers they receive.");
    println!("  /public/ is open to everyone; /admin/ only to AA accounts. Stop with Ctrl-C.");
    match opts.smtp_url {
        Some(_) => {
            println!("  Mail:      through the given SMTP server (忘記密碼 reset links, notices)")
        }
        None => println!(
            "  Mail:      {} (忘記密碼 reset links and notices, as .eml files)",
            outbox.display()
        ),
    }
    if let Some(path) = opts.certificate_config {
        println!(
            "  Citizen certificate: {} (staff accounts bind a card on /.menshen/bind)",
            path.display()
        );
    }
    if let Some(path) = opts.mobile_certificate_config {
        println!(
            "  Mobile citizen certificate: {} (staff accounts bind it on /.menshen/bind; \
             the login page offers 行動自然人憑證APP登入)",
            path.display()
        );
    }
    if let Some(o) = opts.oidc {
        let pages = if opts.single_sign_on {
            format!("{PORTAL_HOST}:{port}")
        } else {
            opts.listen.to_string()
        };
        println!(
            "  OpenID Connect: {} (redirect URI http://{pages}/.menshen/oidc/google/callback)",
            o.issuer
        );
    }
    // Keep the temporary directory for as long as the process runs.
    let _keep = dir.keep();
    crate::server::run(config, services)
}

fn seed(database: &str, accounts: &[DemoAccount]) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = AccountStore::connect(database).await?;
        for a in accounts {
            let new = NewAccount {
                login_name: a.login.to_string(),
                display_name: a.display.to_string(),
                school_code: "999999".to_string(),
                roles: vec![a.roles.to_string()],
                email: format!("{}@demo.invalid", a.login),
                password_hash: hash_password_blocking(&a.password)?,
                id_last4: String::new(),
            };
            store.add(&new, clock::now_secs() as i64).await?;
        }
        store.close().await;
        anyhow::Ok(())
    })
}

/// A demo legacy app: it trusts the identity headers, as a protected app would.
pub struct DemoLegacyApp {
    name: String,
    name_en: String,
    /// The other demo app (name, URL), linked from the page.
    other: Option<(String, String)>,
}

impl DemoLegacyApp {
    pub fn new(name: &str, name_en: &str, other: Option<(&str, &str)>) -> Self {
        DemoLegacyApp {
            name: name.to_string(),
            name_en: name_en.to_string(),
            other: other.map(|(n, u)| (n.to_string(), u.to_string())),
        }
    }
}

#[async_trait]
impl ServeHttp for DemoLegacyApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let path = req
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let wants_json = req
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        let (content_type, body) = if wants_json {
            let map: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let doc = serde_json::json!({ "path": path, "headers": map });
            ("application/json", doc.to_string().into_bytes())
        } else {
            let html = menshen_pages::render_demo_app(&DemoAppPage {
                path: &path,
                headers: &headers,
                identity_prefix: "x-menshen-",
                app: DemoApp {
                    name: &self.name,
                    name_en: &self.name_en,
                    other: self.other.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
                },
            });
            ("text/html; charset=utf-8", html.into_bytes())
        };
        Response::builder()
            .status(200)
            .header("Content-Type", content_type)
            .header("Content-Length", body.len())
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_text() -> String {
        let opts = DemoOptions {
            listen: "127.0.0.1:8080",
            oidc: None,
            certificate_config: None,
            mobile_certificate_config: None,
            single_sign_on: true,
            smtp_url: None,
        };
        let keys = menshen_otp::sealed::Keyring::generate_entry("demo");
        demo_config(
            &opts,
            "sqlite://demo.db",
            (9001, 9002),
            &keys,
            Path::new("/tmp/outbox"),
        )
    }

    #[test]
    fn fragments_are_appended_and_their_errors_name_their_file() {
        let dir = tempfile::tempdir().expect("dir");
        let anchor = dir.path().join("root.der");
        std::fs::write(&anchor, b"not read at parse time").expect("write");
        let good = dir.path().join("mobile-certificate.toml");
        std::fs::write(
            &good,
            format!(
                "[certificate]\ntrust_anchors = [{:?}]\n\n[mobile_certificate]\n\
                 api_url = \"http://127.0.0.1:4100\"\nsp_service_id = \"x\"\n\
                 aes_key = \"-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s\"\n",
                anchor.display().to_string()
            ),
        )
        .expect("write");
        let config = with_fragments(&demo_text(), &[&good]).expect("valid");
        assert!(config.mobile_certificate.is_some());
        assert!(config.certificate.is_some());

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "[mobile_certificate]\napi_url = \"ftp://x\"\nsp_service_id = \"x\"\n\
             aes_key = \"-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s\"\n",
        )
        .expect("write");
        let card = dir.path().join("certificate.toml");
        std::fs::write(
            &card,
            format!(
                "[certificate]\ntrust_anchors = [{:?}]\n",
                anchor.display().to_string()
            ),
        )
        .expect("write");
        let message = with_fragments(&demo_text(), &[&card, &bad])
            .expect_err("invalid")
            .to_string();
        assert!(
            message.contains(&format!("{}:2", bad.display())),
            "the error names the second file and its line: {message}"
        );
        assert!(message.contains("api_url"), "{message}");
        assert!(!message.contains("v7-_v7"), "no key in errors: {message}");
    }
}
