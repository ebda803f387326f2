//! The second factor as the registry manual describes it: forced first binding, OTP binding
//! with a one-view QR code, OTP login with single-use codes, suspensions after three failures,
//! the per-address throttle, and the captcha. Real gateway, real Redis and SQL.

use std::time::Duration;

use menshen_otp::totp;
use menshen_tests::backends::Sql;
use menshen_tests::client::{Browser, element_text, hidden_value, now};
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::upstream::{Seen, Upstream};

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");
const AA: (&str, &str, &str) = ("school.aa", "aa", "admin-horse-4242");

async fn start(opts: Options) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let gw = Gateway::start(opts, up.addr, &[STAFF, AA]).await;
    (up, gw)
}

#[tokio::test]
async fn a_password_alone_reaches_only_the_binding_pages() {
    let (up, gw) = start(Options::default()).await;
    let mut b = Browser::new(&gw.base());
    let page = b.login(STAFF.0, STAFF.2, "/students").await;
    assert_eq!(page.location(), Some("/.menshen/bind"));
    for path in [
        "/students",
        "/public/news",
        "/.menshen/",
        "/.menshen/login",
        "/.menshen/otp",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 302, "{path}");
        assert_eq!(page.location(), Some("/.menshen/bind"), "{path}");
    }
    let xhr = b
        .request(
            reqwest::Method::GET,
            "/api",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(xhr.status, 401);
    assert_eq!(
        up.hits(),
        0,
        "nothing reaches the app before a second factor is bound"
    );
    // The manual's table and notes; staff accounts see the certificate row.
    let page = b.get("/.menshen/bind").await;
    assert_eq!(page.status, 200);
    for text in [
        "授權方式",
        "綁定",
        "授權狀態",
        "請務必選擇一種驗證方式做綁定",
        "QR code 僅供該次頁面掃描使用",
        "重新登入",
    ] {
        assert!(page.body.contains(text), "{text}");
    }
    assert!(page.body.contains("id=\"bind-otp\""));
    assert!(page.body.contains("id=\"bind-certificate\""));
    // AA accounts: OTP only.
    let mut aa = Browser::new(&gw.base());
    aa.login(AA.0, AA.2, "/").await;
    let page = aa.get("/.menshen/bind").await;
    assert!(page.body.contains("id=\"bind-otp\""));
    assert!(!page.body.contains("id=\"bind-certificate\""));
    assert!(page.body.contains("id=\"certificate-note\""));
    assert_eq!(aa.get("/.menshen/bind/certificate").await.status, 403);
}

#[tokio::test]
async fn each_view_of_the_otp_page_has_its_own_fresh_secret() {
    let (_up, gw) = start(Options {
        store: Store::SharedRedis,
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&gw.base());
    b.login(STAFF.0, STAFF.2, "/").await;
    let first = b.get("/.menshen/bind/otp").await;
    let second = b.get("/.menshen/bind/otp").await;
    let s1 = element_text(&first.body, "otp-secret").unwrap_or_default();
    let s2 = element_text(&second.body, "otp-secret").unwrap_or_default();
    assert_ne!(s1, s2);
    let secret = totp::Secret::from_base32(&s1).expect("base32");
    assert_eq!(secret.as_bytes().len() * 8, 160, "at least 160 bits");
    assert!(
        first.body.contains("src=\"data:image/svg+xml;base64,"),
        "QR drawn by the server"
    );
    assert!(first.body.contains("Menshen test"), "issuer from config");
    // A code for the first view's secret does not bind with the second view's id.
    let id2 = hidden_value(&second.body, "bind_id").unwrap_or_default();
    let code1 = totp::code_at(&secret, now());
    let page = b
        .post_form(
            "/.menshen/bind/otp",
            &[
                ("csrf", &second.csrf()),
                ("bind_id", &id2),
                ("code", &code1),
            ],
        )
        .await;
    assert_eq!(page.status, 401, "wrong code for this view");
    // Another browser's session cannot use this view.
    let mut other = Browser::new(&gw.base());
    other.login(STAFF.0, STAFF.2, "/").await;
    let own = other.get("/.menshen/bind/otp").await;
    let id1 = hidden_value(&first.body, "bind_id").unwrap_or_default();
    let page = other
        .post_form(
            "/.menshen/bind/otp",
            &[("csrf", &own.csrf()), ("bind_id", &id1), ("code", &code1)],
        )
        .await;
    assert_eq!(
        page.status, 400,
        "a view belongs to the session that saw it"
    );
    // The view's secret is held in Redis only for a short time.
    let ttl_keys: Vec<String> = gw.redis.as_ref().map(|r| r.keys()).unwrap_or_default();
    assert!(
        ttl_keys.iter().any(|k| k.contains(":bind:")),
        "{ttl_keys:?}"
    );
}

#[tokio::test]
async fn binding_stores_the_secret_sealed_logs_it_and_ends_every_session() {
    let (_up, gw) = start(Options::default()).await;
    let mut elsewhere = Browser::new(&gw.base());
    elsewhere.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(elsewhere.get("/.menshen/bind").await.status, 200);
    let mut b = Browser::new(&gw.base());
    let secret = b.bind_otp(STAFF.0, STAFF.2).await;
    assert!(b.session_cookie().is_none(), "the binding session ended");
    let page = b.get("/.menshen/login?bound=1").await;
    assert!(page.body.contains("綁定完成"), "the manual's message");
    assert_eq!(
        elsewhere.get("/.menshen/bind").await.status,
        302,
        "every session of the account ended"
    );
    let sealed = gw.sql("SELECT sealed_secret FROM otp_bindings");
    assert!(
        sealed.starts_with("v1.test."),
        "sealed with the configured key: {sealed}"
    );
    assert!(
        !sealed.contains(&secret.to_base32()),
        "never stored in the clear"
    );
    let log = gw.sql("SELECT event || ':' || method || ':' || outcome FROM activity ORDER BY id");
    assert!(log.contains("login:password:success"), "{log}");
    assert!(log.contains("bind:otp:success"), "{log}");
    // From now on a password alone never reaches a binding page.
    let mut again = Browser::new(&gw.base());
    let page = again.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/otp"));
    for path in ["/.menshen/bind", "/.menshen/bind/otp"] {
        let page = again.get(path).await;
        assert_eq!(page.location(), Some("/.menshen/otp"), "{path}");
    }
}

#[tokio::test]
async fn otp_login_upgrades_the_session_and_each_code_works_once() {
    let (up, gw) = start(Options {
        sql: Sql::Postgres,
        store: Store::SharedRedis,
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&gw.base());
    let secret = b.bind_otp(STAFF.0, STAFF.2).await;
    let page = b.login(STAFF.0, STAFF.2, "/grades?term=1").await;
    assert_eq!(page.location(), Some("/.menshen/otp"));
    let half = b.session_cookie().cloned().expect("half session");
    assert_eq!(b.get("/grades").await.location(), Some("/.menshen/otp"));
    let wrong = b.submit_otp("000000").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("id=\"message\""));
    let code = totp::code_at(&secret, now() + 30);
    let page = b.submit_otp(&code).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/grades?term=1"));
    let full = b.session_cookie().cloned().expect("full session");
    assert_ne!(full, half, "a new id once the code is right");
    let page = b
        .request(
            reqwest::Method::GET,
            "/grades?term=1",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(
        Seen::parse(&page.body).one("x-menshen-auth-method"),
        Some("password+otp")
    );
    let mut old = Browser::new(&gw.base());
    old.cookies.insert("menshen".into(), half);
    assert_eq!(
        old.get("/grades").await.status,
        302,
        "the half session is gone"
    );
    // The same code again (another browser, same account): refused.
    let mut replay = Browser::new(&gw.base());
    replay.login(STAFF.0, STAFF.2, "/").await;
    let page = replay.submit_otp(&code).await;
    assert_eq!(page.status, 401, "a code is accepted once only");
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn two_concurrent_submits_of_one_code_on_two_instances_give_one_success() {
    let up = Upstream::start().await;
    let a = Gateway::start(
        Options {
            sql: Sql::Postgres,
            store: Store::SharedRedis,
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let b = a.sibling().await;
    let secret = Browser::new(&a.base()).bind_otp(STAFF.0, STAFF.2).await;
    // Two browsers at the OTP step, one on each instance, with the same code.
    let mut on_a = Browser::new(&a.base());
    on_a.login(STAFF.0, STAFF.2, "/").await;
    let mut on_b = Browser::new(&b.base());
    on_b.login(STAFF.0, STAFF.2, "/").await;
    let csrf_a = on_a.get("/.menshen/otp").await.csrf();
    let csrf_b = on_b.get("/.menshen/otp").await.csrf();
    let code = totp::code_at(&secret, now() + 30);
    let form_a = [("csrf", csrf_a.as_str()), ("code", code.as_str())];
    let form_b = [("csrf", csrf_b.as_str()), ("code", code.as_str())];
    let (ra, rb) = tokio::join!(
        on_a.post_form("/.menshen/otp", &form_a),
        on_b.post_form("/.menshen/otp", &form_b),
    );
    let successes = [ra.status, rb.status].iter().filter(|s| **s == 303).count();
    assert_eq!(successes, 1, "statuses {} and {}", ra.status, rb.status);
}

#[tokio::test]
async fn three_wrong_passwords_suspend_the_account_across_instances() {
    let up = Upstream::start().await;
    let a = Gateway::start(
        Options {
            store: Store::SharedRedis,
            sql: Sql::Postgres,
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let b = a.sibling().await;
    let base_b = b.base();
    // Names fold case and spaces: three spellings, two instances, one count.
    assert_eq!(
        Browser::new(&a.base())
            .login("Teacher", "wrong-1", "/")
            .await
            .status,
        401
    );
    assert_eq!(
        Browser::new(&base_b)
            .login(" TEACHER ", "wrong-2", "/")
            .await
            .status,
        401
    );
    let third = Browser::new(&a.base())
        .login("teacher", "wrong-3", "/")
        .await;
    assert_eq!(third.status, 403);
    assert!(
        third.body.contains("暫時停用"),
        "the page says the account is suspended"
    );
    // Now even the right password is refused, on both instances, and says until when.
    for base in [a.base(), base_b.clone()] {
        let page = Browser::new(&base).login(STAFF.0, STAFF.2, "/").await;
        assert_eq!(page.status, 403, "{base}");
        assert!(page.body.contains("暫時停用"));
    }
    let log = a.sql("SELECT event || ':' || outcome FROM activity ORDER BY id");
    assert!(log.contains("lock:locked"), "{log}");
    // The operator lifts it.
    let out = a.account_cli(&["unlock", "TEACHER"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = Browser::new(&base_b).login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/bind"));
    assert!(a.sql("SELECT event FROM activity").contains("unlock"));
}

#[tokio::test]
async fn unknown_names_are_counted_like_real_ones_and_success_resets() {
    let (_up, gw) = start(Options::default()).await;
    let mut pages = Vec::new();
    for _ in 0..3 {
        pages.push(
            Browser::new(&gw.base())
                .login("nobody", "x-wrong-password", "/")
                .await,
        );
    }
    assert_eq!(pages[0].status, 401);
    assert_eq!(pages[2].status, 403, "an unknown name is suspended too");
    assert!(pages[2].body.contains("暫時停用"));
    // Two failures, a success, two failures: not suspended (the count is consecutive).
    for _ in 0..2 {
        Browser::new(&gw.base()).login(STAFF.0, "wrong", "/").await;
    }
    assert_eq!(
        Browser::new(&gw.base())
            .login(STAFF.0, STAFF.2, "/")
            .await
            .status,
        303
    );
    for _ in 0..2 {
        assert_eq!(
            Browser::new(&gw.base())
                .login(STAFF.0, "wrong", "/")
                .await
                .status,
            401
        );
    }
    assert_eq!(
        Browser::new(&gw.base())
            .login(STAFF.0, STAFF.2, "/")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn the_pages_state_the_configured_lockout_rule() {
    let (_up, gw) = start(Options {
        extra: "[lockout]\npassword_failures = 5\notp_failures = 4\nduration = \"20m\"\n".into(),
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&gw.base());
    let login = b.get("/.menshen/login").await;
    assert!(
        login
            .body
            .contains("密碼連續輸入 5 次錯誤，將暫時停用帳號，需等待 20 分鐘後方能再次登入。"),
        "{}",
        login.body
    );
    b.bind_otp(STAFF.0, STAFF.2).await;
    let page = b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/otp"));
    let otp = b.get("/.menshen/otp").await;
    assert!(
        otp.body
            .contains("OTP 密碼連續輸入 4 次錯誤，將暫時停用帳號，需等待 20 分鐘後方可再次登入。"),
        "{}",
        otp.body
    );
}

#[tokio::test]
async fn suspensions_end_by_themselves() {
    let (_up, gw) = start(Options {
        // Long enough that the next login lands inside it on a loaded machine too.
        extra: "[lockout]\nduration = \"8s\"\n".into(),
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        Browser::new(&gw.base()).login(STAFF.0, "wrong", "/").await;
    }
    assert_eq!(
        Browser::new(&gw.base())
            .login(STAFF.0, STAFF.2, "/")
            .await
            .status,
        403
    );
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(
        Browser::new(&gw.base())
            .login(STAFF.0, STAFF.2, "/")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn three_wrong_codes_suspend_the_otp_step() {
    let (up, gw) = start(Options {
        store: Store::SharedRedis,
        ..Options::default()
    })
    .await;
    let secret = Browser::new(&gw.base()).bind_otp(STAFF.0, STAFF.2).await;
    let mut b = Browser::new(&gw.base());
    b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(b.submit_otp("111111").await.status, 401);
    assert_eq!(b.submit_otp("222222").await.status, 401);
    let third = b.submit_otp("333333").await;
    assert_eq!(third.status, 403);
    assert!(
        third.body.contains("暫時停用") || third.body.contains("suspended"),
        "{}",
        third.body
    );
    // The right code is refused while suspended.
    let page = b.submit_otp(&totp::code_at(&secret, now() + 30)).await;
    assert_eq!(page.status, 403);
    assert_eq!(up.hits(), 0);
    let log = gw.sql("SELECT method || ':' || outcome FROM activity WHERE event = 'lock'");
    assert_eq!(log, "otp:locked");
}

#[tokio::test]
async fn one_address_is_throttled_unless_trusted() {
    let (_up, gw) = start(Options {
        extra: "[lockout]\nip_attempts_per_minute = 3\n".into(),
        ..Options::default()
    })
    .await;
    for i in 0..3 {
        let page = Browser::new(&gw.base())
            .login(&format!("user{i}"), "x-wrong-password", "/")
            .await;
        assert_eq!(page.status, 401);
    }
    let page = Browser::new(&gw.base())
        .login("user9", "x-wrong-password", "/")
        .await;
    assert_eq!(
        page.status, 429,
        "credential stuffing across names is slowed"
    );
    let (_up2, trusted) = start(Options {
        extra: "[lockout]\nip_attempts_per_minute = 3\ntrusted_networks = [\"127.0.0.0/8\"]\n"
            .into(),
        ..Options::default()
    })
    .await;
    for i in 0..5 {
        let page = Browser::new(&trusted.base())
            .login(&format!("user{i}"), "x-wrong-password", "/")
            .await;
        assert_eq!(page.status, 401);
    }
}

#[tokio::test]
async fn the_captcha_is_checked_first_and_used_once() {
    let (_up, gw) = start(Options {
        store: Store::SharedRedis,
        captcha: "always",
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&gw.base());
    let page = b.get("/.menshen/login").await;
    for id in ["captcha", "captcha-image", "captcha-refresh"] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(page.body.contains("更換圖片"));
    let (id, answer) = gw.captcha_answer(&page.body);
    assert!(
        !answer.contains(['0', 'O', '1', 'I', 'L']),
        "no confusable characters: {answer}"
    );
    let png = b.get(&format!("/.menshen/captcha/{id}.png")).await;
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    // Wrong captchas: refused before the password, never counted as password failures.
    for _ in 0..4 {
        let page = b.get("/.menshen/login").await;
        let (cid, _) = gw.captcha_answer(&page.body);
        let reply = b
            .post_form(
                "/.menshen/login",
                &[
                    ("csrf", &page.csrf()),
                    ("captcha_id", &cid),
                    ("captcha", "WRONG"),
                    ("username", STAFF.0),
                    ("password", STAFF.2),
                    ("rd", "/"),
                ],
            )
            .await;
        assert_eq!(reply.status, 400);
        assert!(b.session_cookie().is_none());
    }
    let page = b.get("/.menshen/login").await;
    let (cid, answer) = gw.captcha_answer(&page.body);
    let fields = [
        ("csrf", page.csrf()),
        ("captcha_id", cid.clone()),
        ("captcha", answer.to_lowercase()),
        ("username", STAFF.0.to_string()),
        ("password", STAFF.2.to_string()),
        ("rd", "/".to_string()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = b.post_form("/.menshen/login", &fields).await;
    assert_eq!(
        reply.status, 303,
        "right captcha, right password, not locked: {}",
        reply.body
    );
    // The same answer does not work twice.
    let mut again = Browser::new(&gw.base());
    let csrf = again.get("/.menshen/login").await.csrf();
    let mut fields2 = fields.clone();
    fields2[0] = ("csrf", csrf.as_str());
    let reply = again.post_form("/.menshen/login", &fields2).await;
    assert_eq!(reply.status, 400);
    let log =
        gw.sql("SELECT method || ':' || outcome FROM activity WHERE method = 'captcha' LIMIT 1");
    assert_eq!(log, "captcha:failure");
}

#[tokio::test]
async fn after_failure_mode_shows_the_captcha_only_after_a_failure() {
    let (_up, gw) = start(Options {
        captcha: "after_failure",
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&gw.base());
    let page = b.get("/.menshen/login").await;
    assert!(!page.body.contains("id=\"captcha\""));
    assert_eq!(b.login(STAFF.0, "wrong", "/").await.status, 401);
    let page = b.get("/.menshen/login").await;
    assert!(
        page.body.contains("id=\"captcha\""),
        "shown after a failure"
    );
    // Without solving it, even the right password does not get through.
    let reply = b
        .post_form(
            "/.menshen/login",
            &[
                ("csrf", &page.csrf()),
                ("username", STAFF.0),
                ("password", STAFF.2),
                ("rd", "/"),
            ],
        )
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn certificate_only_accounts_are_sent_to_the_certificate_login() {
    let (_up, gw) = start(Options::default()).await;
    let id = gw.sql(&format!(
        "SELECT id FROM accounts WHERE login_key = '{}'",
        STAFF.0
    ));
    gw.sql(&format!(
        "INSERT INTO certificate_bindings VALUES ('{id}', 'C=TW, O=行政院, OU=內政部憑證管理中心', '01', 'ab', '王小明', '6789', 0)"
    ));
    let mut b = Browser::new(&gw.base());
    let page = b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("自然人憑證"),
        "told to use the certificate login"
    );
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn the_support_desk_reset_makes_the_next_login_bind_again() {
    let (_up, gw) = start(Options {
        store: Store::SharedRedis,
        ..Options::default()
    })
    .await;
    let mut b = Browser::new(&gw.base());
    let (page, _) = b.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    assert_eq!(b.get("/x").await.status, 200);
    let out = gw.account_cli(&["reset-binding", STAFF.0], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.get("/x").await.status, 302, "its sessions ended");
    let page = Browser::new(&gw.base()).login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/bind"));
}

#[tokio::test]
async fn otp_keys_can_be_rotated() {
    let (_up, gw) = start(Options::default()).await;
    let secret = Browser::new(&gw.base()).bind_otp(STAFF.0, STAFF.2).await;
    assert!(
        gw.sql("SELECT sealed_secret FROM otp_bindings")
            .starts_with("v1.test.")
    );
    // A new key goes first; the old one stays until everything is re-sealed.
    let new = menshen_tests::gateway::cli_with_stdin(&["keys", "generate", "k2026"], None);
    assert!(new.status.success());
    let entry = String::from_utf8_lossy(&new.stdout).trim().to_string();
    assert!(entry.starts_with("k2026:"), "{entry}");
    let config = std::fs::read_to_string(&gw.config_path).expect("config");
    let old = menshen_tests::gateway::OTP_KEYS;
    std::fs::write(
        &gw.config_path,
        config.replace(old, &format!("{entry},{old}")),
    )
    .expect("write");
    let out = menshen_tests::gateway::cli_with_stdin(
        &[
            "keys",
            "reseal",
            "--config",
            gw.config_path.to_str().unwrap_or(""),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-sealed 1"));
    assert!(
        gw.sql("SELECT sealed_secret FROM otp_bindings")
            .starts_with("v1.k2026.")
    );
    // Only the new key now: a gateway with it alone still opens the secret.
    std::fs::write(&gw.config_path, config.replace(old, &entry)).expect("write");
    let sibling = gw.sibling().await;
    let page = Browser::new(&sibling.base())
        .login_with_otp(STAFF.0, STAFF.2, "/", &secret)
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
}

#[tokio::test]
async fn password_and_binding_resets_end_sessions_without_redis_too() {
    let (_up, gw) = start(Options::default()).await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    assert_eq!(b.get("/x").await.status, 200);
    // Sessions are in the gateway's memory; the CLI reaches only the database.
    let out = gw.account_cli(
        &["reset-password", STAFF.0, "--password-stdin"],
        Some("a-brand-new-password"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    menshen_tests::eventually(Duration::from_secs(15), "the old session ends", || {
        let mut probe = Browser::new(&gw.base());
        probe.cookies = b.cookies.clone();
        async move { probe.get("/x").await.status == 302 }
    })
    .await;
    let mut aa = Browser::new(&gw.base());
    assert_eq!(aa.sign_in(AA.0, AA.2, "/").await.0.status, 303);
    let out = gw.account_cli(&["reset-binding", AA.0], None);
    assert!(out.status.success());
    menshen_tests::eventually(Duration::from_secs(15), "the AA session ends", || {
        let mut probe = Browser::new(&gw.base());
        probe.cookies = aa.cookies.clone();
        async move { probe.get("/x").await.status == 302 }
    })
    .await;
    assert!(
        gw.sql("SELECT event FROM activity")
            .contains("reset_password")
    );
}

/// One view of the OTP page from a signed-in session, answered with `proof` and the right
/// code for the secret it shows.
async fn submit_rebind(b: &mut Browser, proof: &[(&str, &str)]) -> menshen_tests::client::Page {
    let page = b.get("/.menshen/bind/otp").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let shown = element_text(&page.body, "otp-secret").expect("secret shown");
    let secret = totp::Secret::from_base32(&shown).expect("base32");
    let bind_id = hidden_value(&page.body, "bind_id").expect("bind_id");
    let code = totp::code_at(&secret, now());
    let csrf = page.csrf();
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("bind_id", bind_id.as_str()),
        ("code", code.as_str()),
    ];
    fields.extend_from_slice(proof);
    b.post_form("/.menshen/bind/otp", &fields).await
}

#[tokio::test]
async fn re_binding_otp_from_a_session_needs_the_current_password() {
    let (_up, gw) = start(Options::default()).await;
    let mut b = Browser::new(&gw.base());
    let (page, _) = b.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    let sealed = gw.sql("SELECT sealed_secret FROM otp_bindings");
    // The page asks for the current password, labelled, in both languages' first one.
    let view = b.get("/.menshen/bind/otp").await;
    assert!(
        view.body
            .contains("<label for=\"current-proof\">目前的密碼</label>")
    );
    assert!(
        view.body
            .contains("name=\"current_password\" type=\"password\"")
    );
    // The session alone (a right code for the new secret, no password) changes nothing.
    let page = submit_rebind(&mut b, &[]).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("請輸入目前的密碼"), "{}", page.body);
    let page = submit_rebind(&mut b, &[("current_password", "not-it")]).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("目前的密碼（或驗證APP的密碼）錯誤"));
    assert_eq!(gw.sql("SELECT sealed_secret FROM otp_bindings"), sealed);
    // With the password the new secret replaces the old one.
    b.rebind_otp(STAFF.2).await;
    assert_ne!(gw.sql("SELECT sealed_secret FROM otp_bindings"), sealed);
    let log = gw.sql("SELECT event || ':' || method || ':' || outcome FROM activity ORDER BY id");
    assert!(log.contains("reauth:password:failure"), "{log}");
    assert!(log.contains("reauth:password:success"), "{log}");
}

#[tokio::test]
async fn wrong_passwords_on_a_binding_change_count_toward_the_suspension() {
    let (_up, gw) = start(Options::default()).await;
    let mut b = Browser::new(&gw.base());
    let (page, _) = b.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    // One wrong password at the login page, two at the change form: suspended.
    assert_eq!(
        Browser::new(&gw.base())
            .login(STAFF.0, "wrong-1", "/")
            .await
            .status,
        401
    );
    let page = submit_rebind(&mut b, &[("current_password", "wrong-2")]).await;
    assert_eq!(page.status, 401);
    let page = submit_rebind(&mut b, &[("current_password", "wrong-3")]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("帳號已暫停使用至"), "{}", page.body);
    // Now even the right password changes nothing, and the login page is closed too.
    let page = submit_rebind(&mut b, &[("current_password", STAFF.2)]).await;
    assert_eq!(page.status, 403);
    let login = Browser::new(&gw.base()).login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(login.status, 403);
    assert!(login.body.contains("暫時停用"));
    let log = gw.sql("SELECT event || ':' || outcome FROM activity ORDER BY id");
    assert!(log.contains("lock:locked"), "{log}");
}

#[tokio::test]
async fn a_loop_of_anonymous_page_views_does_not_fill_redis() {
    let (_up, gw) = start(Options {
        store: Store::SharedRedis,
        captcha: "always",
        ..Options::default()
    })
    .await;
    let keys = || gw.redis.as_ref().map(|r| r.keys()).unwrap_or_default();
    let before = keys().len();
    let mut statuses = Vec::new();
    // Each view of the login page stores a captcha for minutes; 300 views in a row from one
    // address (a fresh browser each time: no cookie reuse).
    for _ in 0..300 {
        statuses.push(Browser::new(&gw.base()).get("/.menshen/login").await.status);
    }
    let served = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(served + refused, 300, "{statuses:?}");
    assert!(refused > 0, "the address ran out of its budget");
    assert!(served <= 60, "{served} captchas stored in one minute");
    let grown = keys().len().saturating_sub(before);
    assert!(
        grown <= 60 + 5,
        "Redis grew by {grown} keys for 300 anonymous page views"
    );
}

#[tokio::test]
async fn without_a_usable_password_a_fresh_otp_code_is_the_proof() {
    let (_up, gw) = start(Options::default()).await;
    let mut b = Browser::new(&gw.base());
    let (page, secret) = b.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    // The account's password can no longer be checked here (a support-desk placeholder).
    gw.sql("UPDATE accounts SET password_hash = '!' WHERE login_name = 'teacher'");
    let view = b.get("/.menshen/bind/otp").await;
    assert!(view.body.contains("name=\"current_code\""), "{}", view.body);
    assert!(!view.body.contains("name=\"current_password\""));
    // The password is not accepted in its place, and a wrong code is counted.
    let page = submit_rebind(&mut b, &[("current_password", STAFF.2)]).await;
    assert_eq!(page.status, 400, "{}", page.body);
    let page = submit_rebind(&mut b, &[("current_code", "000000")]).await;
    assert_eq!(page.status, 401);
    let used: u64 = gw
        .sql("SELECT last_step FROM otp_bindings")
        .parse()
        .unwrap_or(0);
    let code = menshen_tests::client::fresh_code(&secret, used).await;
    let sealed = gw.sql("SELECT sealed_secret FROM otp_bindings");
    let page = submit_rebind(&mut b, &[("current_code", &code)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/login?bound=1&via=otp"));
    assert_ne!(gw.sql("SELECT sealed_secret FROM otp_bindings"), sealed);
    let log = gw.sql("SELECT event || ':' || method || ':' || outcome FROM activity ORDER BY id");
    assert!(log.contains("reauth:otp:failure"), "{log}");
    assert!(log.contains("reauth:otp:success"), "{log}");
}
