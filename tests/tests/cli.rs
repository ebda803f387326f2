//! The operator's commands: check-config, account import, and the TLS listener with the
//! `__Host-` cookie.

use std::time::Duration;

use menshen_tests::backends::Sql;
use menshen_tests::client::{Browser, client_builder, scrape_metrics};
use menshen_tests::gateway::{Gateway, Options, cli_with_stdin};
use menshen_tests::upstream::Upstream;

#[test]
fn check_config_reports_every_problem_with_its_line() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[listen]]\naddress = \"127.0.0.1:notaport\"\n\n[session]\nidle_timeout = \"forever\"\ncolour = \"red\"\n\n[[site]]\nname = \"a\"\nhosts = [\"a.example\"]\nupstreams = [\"127.0.0.1:1\"]\n",
    )
    .expect("write");
    let out = cli_with_stdin(&["check-config", path.to_str().unwrap_or("")], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!("{file}:2:")),
        "address error on line 2:\n{err}"
    );
    assert!(
        err.contains(&format!("{file}:5:")),
        "duration error on line 5:\n{err}"
    );
    assert!(
        err.contains(&format!("{file}:6:")) && err.contains("colour"),
        "unknown key on line 6:\n{err}"
    );
    // A config that names a TLS file that does not exist is refused too.
    std::fs::write(&path, "[[listen]]\naddress = \"127.0.0.1:8443\"\ntls = { certificate = \"/nonexistent/c.pem\", key = \"/nonexistent/k.pem\" }\n[[site]]\nname = \"a\"\nhosts = [\"a.example\"]\nupstreams = [\"127.0.0.1:1\"]\n").expect("write");
    let out = cli_with_stdin(&["check-config", path.to_str().unwrap_or("")], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/c.pem"));
}

/// A `[certificate]` table whose CRLs leave a CA uncovered passes, with a warning naming
/// it; with every list, no warning.
#[test]
fn check_config_warns_about_a_ca_no_crl_covers() {
    use menshen_pki::testpki::TestPki;
    use menshen_tests::pki::PkiFiles;

    let dir = tempfile::tempdir().expect("dir");
    let pki = PkiFiles::write(dir.path(), &TestPki::generate(), &[]);
    let base = "[[listen]]\naddress = \"127.0.0.1:8080\"\n\n[[site]]\nname = \"a\"\n\
                hosts = [\"a.example\"]\nupstreams = [\"127.0.0.1:1\"]\n\n\
                [otp]\nkeys = \"k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n\n[certificate]\n";
    let path = dir.path().join("menshen.toml");
    let check = |table: String| {
        std::fs::write(&path, format!("{base}{table}")).expect("write");
        let out = cli_with_stdin(&["check-config", path.to_str().unwrap_or("")], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let all = check(pki.lines());
    assert!(!all.contains("warning:"), "{all}");
    let without_root = check(format!(
        "trust_anchors = [\"{}\"]\nintermediates = [\"{}\", \"{}\"]\ncrls = [\"{}\", \"{}\"]\n",
        pki.root, pki.g2, pki.g3, pki.g2_crl, pki.g3_crl
    ));
    let warnings: Vec<&str> = without_root
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{without_root}");
    assert!(
        warnings[0]
            .contains("no CRL in certificate.crls covers C=TW, O=行政院, OU=政府憑證總管理中心"),
        "{without_root}"
    );
}

#[test]
fn every_example_config_passes_check_config_apart_from_missing_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().expect("dir");
    // The compose file's config names compose services; resolve them to loopback here.
    let compose =
        std::fs::read_to_string(root.join("deploy/compose-menshen.toml")).expect("compose config");
    let compose_path = dir.path().join("compose-menshen.toml");
    std::fs::write(
        &compose_path,
        compose.replace("legacy-app:80", "127.0.0.1:80"),
    )
    .expect("write");
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("config/examples"))
        .expect("examples dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.push(compose_path);
    let mut n = 0;
    for path in paths {
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        n += 1;
        let out = std::process::Command::new(menshen_tests::menshen_bin())
            .arg("check-config")
            .arg(&path)
            .env("MENSHEN_DB_PASSWORD", "example")
            .env("MENSHEN_REDIS_PASSWORD", "example")
            .env("MENSHEN_OTP_KEYS", menshen_tests::gateway::OTP_KEYS)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        // TLS certificate paths in the examples point at an operator's files.
        let only_missing_files = err
            .lines()
            .filter(|l| {
                l.split(".toml:")
                    .nth(1)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .all(|l| l.contains(".pem"));
        assert!(
            out.status.success() || only_missing_files,
            "{}:\n{err}",
            path.display()
        );
    }
    assert!(n >= 4, "the examples and the compose config are there");
}

#[tokio::test]
async fn import_refuses_a_file_with_bad_rows_and_imports_a_good_one() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            sql: Sql::Postgres,
            ..Options::default()
        },
        up.addr,
        &[],
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "login_name,display_name,school_code,roles,email,password\n\
         t.chen,陳老師,123456,staff,chen@example.org,long-enough-pass-1\n\
         ,無名,123456,staff,,long-enough-pass-2\n\
         t.lin,林老師,123456,wizard,lin@example.org,long-enough-pass-3\n\
         T.Chen,陳老師二,123456,staff,,long-enough-pass-4\n\
         t.wu,吳老師,123456,staff,wu-at-example.org,short\n",
    )
    .expect("write");
    let out = gw.account_cli(&["import", bad.to_str().unwrap_or("")], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [3, 4, 5, 6] {
        assert!(
            err.contains(&format!("bad.csv:{line}:")),
            "line {line} reported:\n{err}"
        );
    }
    assert!(
        !err.contains("bad.csv:2:"),
        "the good row is not blamed:\n{err}"
    );
    let list = gw.account_cli(&["list"], None);
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains("t.chen"),
        "nothing imported"
    );

    let good = dir.path().join("good.csv");
    std::fs::write(
        &good,
        "login_name,display_name,school_code,roles,email,password\n\
         t.chen,陳老師,123456,staff,chen@example.org,long-enough-pass-1\n\
         s.aa,校管,123456,aa,,\n",
    )
    .expect("write");
    let out = gw.account_cli(&["import", good.to_str().unwrap_or("")], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("imported 2"));
    let generated = stdout
        .lines()
        .find(|l| l.starts_with("s.aa"))
        .and_then(|l| l.split("password: ").nth(1))
        .expect("a generated password is printed for rows without one")
        .trim()
        .to_string();
    let mut b = Browser::new(&gw.base());
    assert_eq!(
        b.login("t.chen", "long-enough-pass-1", "/").await.status,
        303
    );
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.login("s.aa", &generated, "/").await.status, 303);
    // A second import of the same names is refused whole.
    let out = gw.account_cli(&["import", good.to_str().unwrap_or("")], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already taken"));
    // reset-password applies the policy and works.
    let out = gw.account_cli(
        &["reset-password", "t.chen", "--password-stdin"],
        Some("short"),
    );
    assert!(!out.status.success());
    let out = gw.account_cli(
        &["reset-password", "T.CHEN", "--password-stdin"],
        Some("a-new-long-password"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut b = Browser::new(&gw.base());
    assert_eq!(
        b.login("t.chen", "a-new-long-password", "/").await.status,
        303
    );
}

#[tokio::test]
async fn tls_listener_uses_the_host_prefixed_cookie_and_hsts() {
    let dir = tempfile::tempdir().expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");

    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            tls: Some((cert_path, key_path)),
            ..Options::default()
        },
        up.addr,
        &[("teacher", "staff", "correct-horse-42")],
    )
    .await;
    let root = reqwest::Certificate::from_pem(cert.pem().as_bytes()).expect("root");
    let client = client_builder()
        .tls_certs_only([root])
        .build()
        .expect("client");
    let mut b = Browser::with_client(&gw.base(), client);
    let login = b.get("/.menshen/login").await;
    assert_eq!(login.status, 200);
    assert_eq!(
        login.header("strict-transport-security"),
        Some("max-age=31536000")
    );
    let csrf_cookie = login.header("set-cookie").unwrap_or("");
    assert!(
        csrf_cookie.starts_with("__Host-menshen-csrf=") && csrf_cookie.contains("Secure"),
        "{csrf_cookie}"
    );
    let page = b.login("teacher", "correct-horse-42", "/").await;
    assert_eq!(page.status, 303);
    let set = page.header("set-cookie").unwrap_or("").to_string();
    assert!(set.starts_with("__Host-menshen="), "{set}");
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let secret = b.bind_otp_in_session().await;
    let page = b
        .login_with_otp("teacher", "correct-horse-42", "/", &secret)
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(b.get("/x").await.status, 200);
    // The plain cookie name means nothing over TLS.
    let mut plain = Browser::with_client(&gw.base(), b.client.clone());
    plain.cookies.insert(
        "menshen".into(),
        b.session_cookie().cloned().unwrap_or_default(),
    );
    assert_eq!(plain.get("/x").await.status, 302);
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            metrics: true,
            ..Options::default()
        },
        up.addr,
        &[],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.get("/x").await.status, 302);
    let port = gw.metrics_port.expect("metrics port");
    let scrape = || scrape_metrics(port);
    // A request is counted when Pingora logs it, just after its response is sent: the scrape
    // may come first, so wait for the count rather than expect it at once.
    let counted = "menshen_requests_total{outcome=\"login_redirect\",site=\"app\"} 1";
    menshen_tests::eventually(
        Duration::from_secs(10),
        "the redirect is counted",
        || async { scrape().await.contains(counted) },
    )
    .await;
    let text = scrape().await;
    assert!(text.contains(counted), "{text}");
    // The public listener does not serve metrics: /metrics there is just a protected path.
    assert_eq!(b.get("/metrics").await.status, 302);
}

#[test]
fn check_config_wants_the_portal_named_by_the_tls_certificate() {
    let dir = tempfile::tempdir().expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec![
        "registry.school.example".to_string(),
        "*.sso.school.example".to_string(),
    ])
    .expect("params");
    let cert = params.self_signed(&key).expect("cert");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write");
    std::fs::write(&key_path, key.serialize_pem()).expect("write");
    let config = |portal: &str| {
        format!(
            "[[listen]]\naddress = \"127.0.0.1:8443\"\ntls = {{ certificate = \"{}\", key = \"{}\" }}\n\
             [otp]\nkeys = \"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n\
             [[site]]\nname = \"registry\"\nhosts = [\"registry.school.example\"]\nupstreams = [\"127.0.0.1:1\"]\n\
             [portal]\nhost = \"{portal}\"\n",
            cert_path.display(),
            key_path.display()
        )
    };
    let path = dir.path().join("menshen.toml");
    std::fs::write(&path, config("login.school.example")).expect("write");
    let out = cli_with_stdin(&["check-config", path.to_str().unwrap_or("")], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:11:", path.display()))
            && err.contains("is not named by the TLS certificate"),
        "{err}"
    );
    std::fs::write(&path, config("login.sso.school.example")).expect("write");
    let out = cli_with_stdin(&["check-config", path.to_str().unwrap_or("")], None);
    assert!(
        out.status.success(),
        "a wildcard name covers the portal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
