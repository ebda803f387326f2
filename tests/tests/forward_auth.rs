//! Forward-auth: a real nginx with `auth_request` (configured with the files in
//! `deploy/nginx/`) in front of a legacy app, asking the real gateway about every request.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use menshen_tests::client::{Browser, client_builder};
use menshen_tests::free_port;
use menshen_tests::gateway::{Gateway, Options};
use menshen_tests::upstream::{Seen, Upstream};

const STAFF: (&str, &str, &str) = ("teacher.one", "staff", "correct-horse-42");

/// nginx on a free port, proxying to `app` behind Menshen at `gateway` (the deploy files
/// included as they are). It reaches Menshen from 127.0.0.2, the only trusted proxy.
struct Nginx {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(gateway: u16, app: std::net::SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().expect("dir");
        let port = free_port();
        let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let d = dir.path().display();
        let conf = format!(
            r#"{user}
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream menshen {{ server 127.0.0.1:{gateway}; }}
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        proxy_bind 127.0.0.2;
        include {deploy}/menshen-locations.conf;
        location / {{
            include {deploy}/menshen-protect.conf;
            proxy_pass http://{app};
        }}
    }}
}}
"#,
            user = if root { "user root;" } else { "" },
            deploy = deploy.display(),
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx must be installed (scripts/setup installs it)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            let log = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "nginx did not start:\n{log}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Nginx { port, child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> (Upstream, Gateway, Nginx) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            extra: "[forward_auth]\ntrusted_proxies = [\"127.0.0.2/32\"]\n".into(),
            ..Options::default()
        },
        up.addr,
        &[STAFF, ("school.aa", "aa", "admin-horse-4242")],
    )
    .await;
    let nginx = Nginx::start(gw.port, up.addr).await;
    (up, gw, nginx)
}

#[tokio::test]
async fn nginx_asks_menshen_and_the_app_sees_only_verified_identity() {
    let (up, _gw, nginx) = start().await;
    let mut b = Browser::new(&format!("http://127.0.0.1:{}", nginx.port));
    b.host = Some(format!("app.test:{}", nginx.port));

    // No session: nginx gets 401 + the login URL from Menshen and redirects the browser.
    let hits = up.hits();
    let page = b.get("/students?id=7").await;
    assert_eq!(page.status, 302, "{}\n{}", page.body, nginx.log());
    assert_eq!(
        page.location(),
        Some(
            format!(
                "http://app.test:{}/.menshen/login?rd=%2Fstudents%3Fid%3D7",
                nginx.port
            )
            .as_str()
        )
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(up.hits(), hits, "nothing reached the app");

    // Public paths pass without identity, whatever the client claims.
    let page = b
        .request(
            reqwest::Method::GET,
            "/public/x",
            &[("X-Menshen-User", "evil"), ("x-menshen-roles", "aa")],
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", nginx.log());
    let seen = Seen::parse(&page.body);
    assert!(seen.all("x-menshen-user").is_empty(), "{:?}", seen.headers);
    assert!(seen.all("x-menshen-roles").is_empty());

    // Signing in through nginx (Menshen's pages behind /.menshen/), then the app sees the
    // verified identity only.
    let (done, _) = b.sign_in(STAFF.0, STAFF.2, "/students?id=7").await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), Some("/students?id=7"));
    let page = b
        .request(
            reqwest::Method::GET,
            "/students?id=7",
            &[
                ("X-Menshen-User", "evil"),
                ("X_Menshen_User", "evil"),
                ("X-Menshen-Roles", "aa"),
            ],
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}\n{}", page.body, nginx.log());
    let seen = Seen::parse(&page.body);
    assert_eq!(seen.all("x-menshen-user"), [STAFF.0]);
    assert_eq!(seen.all("x-menshen-roles"), ["staff"]);
    assert_eq!(seen.one("x-menshen-auth-method"), Some("password+otp"));
    assert!(seen.all("x_menshen_user").is_empty());
    assert_eq!(seen.uri, "/students?id=7");

    // The site's rules apply: deny, and roles.
    assert_eq!(b.get("/blocked/x").await.status, 403);
    assert_eq!(b.get("/admin/x").await.status, 403);

    // A logout is seen on the very next question (nothing cached).
    let csrf = b.get("/.menshen/logout").await.csrf();
    assert_eq!(
        b.post_form("/.menshen/logout", &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    assert_eq!(b.get("/students?id=7").await.status, 302);
}

#[tokio::test]
async fn only_trusted_proxies_may_ask_and_caddy_style_gets_a_redirect() {
    let (_up, gw, _nginx) = start().await;
    let ask = |from: &'static str, headers: Vec<(&'static str, String)>| {
        let url = format!("http://127.0.0.1:{}/.menshen/auth", gw.port);
        async move {
            let client = client_builder()
                .local_address(from.parse::<std::net::IpAddr>().ok())
                .build()
                .expect("client");
            let mut req = client.get(url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.expect("ask")
        }
    };
    // From 127.0.0.1 (not trusted): refused, even with a perfect question.
    let caddy = vec![
        ("X-Forwarded-Proto", "http".to_string()),
        ("X-Forwarded-Host", "app.test".to_string()),
        ("X-Forwarded-Uri", "/x?y=1".to_string()),
        ("X-Forwarded-Method", "GET".to_string()),
    ];
    assert_eq!(ask("127.0.0.1", caddy.clone()).await.status(), 403);
    // From the trusted proxy, Caddy/Traefik style: a redirect it passes to the browser.
    let answer = ask("127.0.0.2", caddy).await;
    assert_eq!(answer.status(), 302);
    assert_eq!(
        answer
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("http://app.test/.menshen/login?rd=%2Fx%3Fy%3D1")
    );
    // Paths are checked as when Menshen proxies.
    let bad = vec![(
        "X-Original-URL",
        "http://app.test/public/%252e%252e/admin/".to_string(),
    )];
    assert_eq!(ask("127.0.0.2", bad).await.status(), 400);
    let unknown = vec![("X-Original-URL", "http://other.test/".to_string())];
    assert_eq!(ask("127.0.0.2", unknown).await.status(), 403);
    assert_eq!(ask("127.0.0.2", Vec::new()).await.status(), 400);
}
