//! Attacks on the gateway's trust boundary: forged identity headers, open redirects through
//! `rd`, and paths dressed up to slip past access rules.

use menshen_tests::backends::Sql;
use menshen_tests::client::Browser;
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::upstream::{Seen, Upstream};

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");

async fn start(site_extra: &str) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            sql: Sql::Sqlite,
            store: Store::Memory,
            site_extra: site_extra.into(),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    (up, gw)
}

/// Sends a request with raw header lines (reqwest would normalise names), returns the answer.
async fn raw_request(port: u16, head: &str) -> String {
    menshen_tests::client::raw_request(port, head.as_bytes()).await
}

const SPOOFS: &[(&str, &str)] = &[
    ("X-Original-URL", "/admin/"),
    ("X-Rewrite-URL", "/admin/"),
    ("X-Forwarded-Host", "evil.example"),
    ("Forwarded", "for=1.2.3.4;host=evil.example"),
    ("X-Real-IP", "10.0.0.1"),
    ("X-Menshen-User", "admin"),
    ("x-menshen-user", "admin2"),
    ("X-MENSHEN-USER", "admin3"),
    ("X_Menshen_User", "admin4"),
    ("x_menshen-roles", "aa"),
    ("X-Menshen_Roles", "aa"),
    ("X-Menshen-Auth-Method", "certificate"),
    ("X-Menshen-School", "000000"),
    ("X-Menshen-Name", "Mallory"),
    ("X-Menshen-Anything", "x"),
    ("X-Remote-User", "admin"),
    ("x_remote_user", "admin"),
];

#[tokio::test]
async fn every_spoofed_identity_header_is_removed_before_the_verified_ones_go_in() {
    // The site renames the user header: both the namespace and the custom name are stripped.
    let (_up, gw) = start("[site.headers]\nuser = \"X-Remote-User\"\n").await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    let mut headers: Vec<(&str, &str)> = SPOOFS.to_vec();
    headers.push(("Accept", "application/json"));
    let page = b.request(reqwest::Method::GET, "/x", &headers, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = Seen::parse(&page.body);
    assert_eq!(seen.all("x-remote-user"), vec!["teacher"]);
    assert_eq!(seen.all("x-menshen-roles"), vec!["staff"]);
    assert_eq!(seen.all("x-menshen-auth-method"), vec!["password+otp"]);
    assert_eq!(seen.all("x-menshen-school"), vec!["123456"]);
    // Routing and origin headers only a trusted proxy may set are gone or Menshen's own.
    for name in ["x-original-url", "x-rewrite-url", "forwarded", "x-real-ip"] {
        assert!(seen.all(name).is_empty(), "{name} reached the app");
    }
    assert_eq!(
        seen.all("x-forwarded-host"),
        vec![format!("127.0.0.1:{}", gw.port).as_str()]
    );
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"]);
    for (name, _) in &seen.headers {
        let folded = name.to_ascii_lowercase().replace('_', "-");
        assert!(
            !folded.starts_with("x-menshen-anything")
                && folded != "x-menshen-user"
                && !name.contains('_'),
            "spoofed header reached the app: {name}"
        );
    }
    // Repeated header lines and odd spellings over a raw connection, anonymous path.
    let cookie = b.session_cookie().cloned().unwrap_or_default();
    let head = format!(
        "GET /public/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Menshen-User: a\r\nX-Menshen-User: b\r\nx_menshen_user: c\r\nX-mEnShEn-RoLeS: aa\r\nCookie: menshen={cookie}\r\nConnection: close\r\n\r\n"
    );
    let out = raw_request(gw.port, &head).await;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("");
    let seen = Seen::parse(body);
    assert!(
        seen.headers.iter().all(|(k, _)| !k
            .to_ascii_lowercase()
            .replace('_', "-")
            .starts_with("x-menshen")),
        "{body}"
    );
}

/// Return targets that must never leave the site.
const BAD_TARGETS: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https://evil.example",
    "http://evil.example/",
    "HTTPS://evil.example",
    "//evil.example/%2e%2e",
    "http:evil.example",
    "https:/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/%2f%2fevil.example",
    "/%2F%2Fevil.example",
    "%2f%2fevil.example",
    "/%5cevil.example",
    "/%5Cevil.example",
    "/%252f%252fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    " /evil",
    "evil.example",
    "@evil.example",
    "/%09/evil.example",
    "//evil.example@good",
    "/.menshen/login",
    "/.menshen/logout",
    "/%2e%6denshen/login",
    "",
    "//%09/evil.example",
];

#[tokio::test]
async fn return_targets_never_leave_the_site() {
    let up = Upstream::start().await;
    let accounts = [
        ("rd1", "staff", "correct-horse-42"),
        ("rd2", "staff", "correct-horse-42"),
        ("rd3", "staff", "correct-horse-42"),
        ("rd4", "staff", "correct-horse-42"),
    ];
    let gw = Gateway::start(Options::default(), up.addr, &accounts).await;
    assert!(BAD_TARGETS.len() >= 30);
    // The login page never carries a bad target into its form.
    for rd in BAD_TARGETS {
        let mut b = Browser::new(&gw.base());
        let query: String = rd.bytes().map(|c| format!("%{c:02X}")).collect();
        let page = b.get(&format!("/.menshen/login?rd={query}")).await;
        assert_eq!(page.status, 200, "rd {rd:?}");
        assert_eq!(
            menshen_tests::client::hidden_value(&page.body, "rd").as_deref(),
            Some("/"),
            "rd {rd:?} must be replaced by /"
        );
    }
    // A posted bad target is replaced too, all the way through the OTP step.
    for ((name, _, pw), rd) in
        accounts
            .iter()
            .zip(["//evil.example", "/%5cevil.example", "https://evil.example"])
    {
        let mut b = Browser::new(&gw.base());
        let (page, _) = b.sign_in(name, pw, rd).await;
        assert_eq!(page.status, 303, "rd {rd:?}: {}", page.body);
        assert_eq!(
            page.location(),
            Some("/"),
            "rd {rd:?} must be replaced by /"
        );
    }
    // Local targets are kept.
    for rd in [
        "/students?id=1",
        "/a/b?next=https://evil.example",
        "/%E5%AD%B8%E7%B1%8D",
        "/x#frag",
    ] {
        let mut b = Browser::new(&gw.base());
        let query: String = rd.bytes().map(|c| format!("%{c:02X}")).collect();
        let page = b.get(&format!("/.menshen/login?rd={query}")).await;
        assert_eq!(
            menshen_tests::client::hidden_value(&page.body, "rd")
                .map(|v| v.replace("&#38;", "&"))
                .as_deref(),
            Some(rd)
        );
    }
    let mut b = Browser::new(&gw.base());
    let (page, _) = b
        .sign_in(accounts[3].0, accounts[3].2, "/students?id=1")
        .await;
    assert_eq!(page.location(), Some("/students?id=1"));
    // A control character in a form field is a garbled form, not a target to clean up.
    let mut b = Browser::new(&gw.base());
    let page = b
        .login(accounts[0].0, accounts[0].2, "/\u{0000}/evil")
        .await;
    assert_eq!(page.status, 400);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn dressed_up_paths_cannot_reach_protected_pages() {
    let (up, gw) = start("").await;
    let attempts = [
        "/public/..%2fsecret",
        "/public/%2e%2e/secret",
        "/public/%2E%2E/secret",
        "/public/..;/secret",
        "/public/.%2e/secret",
        "/public/%2e%2e%2fsecret",
        "/public%2f..%2fsecret",
        "/public/..%5csecret",
        "/public/%5c..%5csecret",
        "/./public/../secret",
        "//public/../secret",
        "/public/./../secret",
        "/PUBLIC/../secret",
        "/public;x=1/../secret",
        // Names Windows/IIS reads as others: a trailing dot or space, a stream, a short name.
        "/admin./users",
        "/admin%20/users",
        "/admin::$DATA",
        "/ADMIN~1/users",
    ];
    for path in attempts {
        let mut b = Browser::new(&gw.base());
        let page = b
            .request(
                reqwest::Method::GET,
                path,
                &[("Accept", "application/json")],
                None,
            )
            .await;
        assert!(
            page.status == 401 || page.status == 400,
            "{path} reached {} ({})",
            page.status,
            page.body
        );
    }
    // Raw targets that HTTP clients would clean up themselves.
    for path in [
        "/public/../secret",
        "/public/./../secret",
        "/public/..\\secret",
    ] {
        let out = raw_request(gw.port, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n")).await;
        let status = out.split(' ').nth(1).unwrap_or("");
        assert!(status == "401" || status == "400", "{path}: {out}");
    }
    assert_eq!(up.hits(), 0, "no dressed-up request may reach the app");
    // What is checked is what is served: the app receives the normalised path.
    let mut b = Browser::new(&gw.base());
    let page = b
        .request(
            reqwest::Method::GET,
            "/public/a/./b/../c%20d?q=%2e%2e",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(Seen::parse(&page.body).uri, "/public/a/c%20d?q=%2e%2e");
    // Encoded /.menshen/ paths are answered by Menshen, never proxied.
    let page = b.get("/%2emenshen/login").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("login-form"));
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn unknown_hosts_get_421_and_no_upstream() {
    let (up, gw) = start("").await;
    let mut b = Browser::new(&gw.base());
    b.host = Some("other.example".into());
    let page = b.get("/").await;
    assert_eq!(page.status, 421);
    assert!(page.body.contains("error-title"));
    b.host = Some("APP.TEST.".into());
    assert_eq!(
        b.get("/x").await.status,
        302,
        "host match ignores case and trailing dot"
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn menshen_pages_carry_security_headers() {
    let (_up, gw) = start("").await;
    let mut b = Browser::new(&gw.base());
    for path in ["/.menshen/login", "/x", "/.menshen/nope"] {
        let page = b.get(path).await;
        let csp = page.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
        assert!(
            page.header("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    let css = b.get("/.menshen/static/menshen.css").await;
    assert_eq!(css.status, 200);
    assert!(
        css.header("content-type")
            .unwrap_or("")
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn plain_http_without_dev_mode_is_sent_to_https() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            insecure_dev_cookie: Some(false),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    b.host = Some("app.test:8080".into());
    let page = b.get("/students?id=1").await;
    assert_eq!(page.status, 301);
    assert_eq!(page.location(), Some("https://app.test/students?id=1"));
    let page = b.get("/.menshen/login").await;
    assert_eq!(page.status, 301, "no login form over plain HTTP");
    assert!(b.cookies.is_empty(), "no cookie is set over plain HTTP");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn pages_speak_english_on_request_and_chinese_by_default() {
    let (_up, gw) = start("").await;
    let mut b = Browser::new(&gw.base());
    let page = b.get("/.menshen/login").await;
    assert!(page.body.contains("lang=\"zh-Hant-TW\"") && page.body.contains("帳號"));
    let page = b
        .request(
            reqwest::Method::GET,
            "/.menshen/login",
            &[("Accept-Language", "en-US,en;q=0.9,zh-TW;q=0.5")],
            None,
        )
        .await;
    assert!(
        page.body.contains("<html lang=\"en\""),
        "Accept-Language picks English"
    );
    // The switch sets a cookie that wins over Accept-Language afterwards.
    let page = b.get("/.menshen/login?lang=en").await;
    assert!(page.body.contains("<html lang=\"en\""));
    assert_eq!(
        b.cookies.get("menshen-lang").map(String::as_str),
        Some("en")
    );
    let page = b
        .request(
            reqwest::Method::GET,
            "/.menshen/login",
            &[("Accept-Language", "zh-TW")],
            None,
        )
        .await;
    assert!(page.body.contains("<html lang=\"en\""));
    // Error pages follow the choice too.
    let page = b.get("/blocked/x").await;
    assert!(page.body.contains("<html lang=\"en\""));
}
