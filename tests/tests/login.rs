//! Password login, logout and sessions through the real gateway, on every storage backend:
//! SQLite with in-process sessions, SQLite with Redis, PostgreSQL with Redis.

use menshen_tests::backends::Sql;
use menshen_tests::client::Browser;
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::random_token;
use menshen_tests::upstream::{Seen, Upstream};

const STAFF: (&str, &str, &str) = ("Teacher.One", "staff", "correct-horse-42");
const AA: (&str, &str, &str) = ("school.aa", "aa", "admin-horse-4242");

async fn start(sql: Sql, store: Store) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            sql,
            store,
            ..Options::default()
        },
        up.addr,
        &[STAFF, AA],
    )
    .await;
    (up, gw)
}

/// Runs one scenario against each backend combination.
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                use super::*;
                #[tokio::test]
                async fn sqlite_memory() { super::$scenario(Sql::Sqlite, Store::Memory).await }
                #[tokio::test]
                async fn sqlite_redis() { super::$scenario(Sql::Sqlite, Store::SharedRedis).await }
                #[tokio::test]
                async fn postgres_redis() { super::$scenario(Sql::Postgres, Store::SharedRedis).await }
            }
        )*
    };
}

on_every_backend!(
    login_reaches_the_app_with_verified_identity,
    wrong_password_and_unknown_user_look_the_same,
    logout_ends_the_session_on_the_server,
    disabled_account_loses_its_sessions,
);

async fn login_reaches_the_app_with_verified_identity(sql: Sql, store: Store) {
    let (up, gw) = start(sql, store.clone()).await;
    let mut b = Browser::new(&gw.base());
    // Login names are case-insensitive.
    let (page, _) = b.sign_in("teacher.one", STAFF.2, "/students?id=7").await;
    assert_eq!(page.status, 303, "{}\n{}", page.body, gw.log());
    assert_eq!(page.location(), Some("/students?id=7"));
    assert!(b.session_cookie().is_some());
    let page = b
        .request(
            reqwest::Method::GET,
            "/students?id=7",
            &[("Accept", "application/json"), ("Cookie", "app=1")],
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = Seen::parse(&page.body);
    assert_eq!(seen.uri, "/students?id=7");
    assert_eq!(seen.one("x-menshen-user"), Some("Teacher.One"));
    assert_eq!(
        seen.one("x-menshen-name"),
        Some("%E7%8E%8B%E5%B0%8F%E6%98%8E")
    );
    assert_eq!(seen.one("x-menshen-roles"), Some("staff"));
    assert_eq!(seen.one("x-menshen-school"), Some("123456"));
    assert_eq!(seen.one("x-menshen-auth-method"), Some("password+otp"));
    // The app never sees Menshen's own cookies.
    for c in seen.all("cookie") {
        assert!(
            !c.contains("menshen"),
            "menshen cookie leaked upstream: {c}"
        );
    }
    if store == Store::SharedRedis {
        let keys = gw.redis.as_ref().map(|r| r.keys()).unwrap_or_default();
        let cookie = b.session_cookie().cloned().unwrap_or_default();
        assert!(!keys.is_empty(), "the session must live in Redis");
        assert!(
            keys.iter().all(|k| !k.contains(&cookie)),
            "the raw session id must not be a Redis key"
        );
    }
    assert_eq!(up.hits(), 1);
}

async fn wrong_password_and_unknown_user_look_the_same(sql: Sql, store: Store) {
    let (up, gw) = start(sql, store).await;
    let mut b = Browser::new(&gw.base());
    let wrong = b.login(STAFF.0, "not-the-password", "/").await;
    let unknown = b.login("nobody.here", "not-the-password", "/").await;
    let disabled_like = b.login("", "x", "/").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(disabled_like.status, 400, "empty user name is a form error");
    let message = |body: &str| {
        let start = body.find("id=\"message\"").expect("message box");
        body[start..start + 300.min(body.len() - start)].to_string()
    };
    assert_eq!(message(&wrong.body), message(&unknown.body));
    assert!(b.session_cookie().is_none());
    assert_eq!(up.hits(), 0);
}

async fn logout_ends_the_session_on_the_server(sql: Sql, store: Store) {
    let (_up, gw) = start(sql, store).await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    let stolen = b.session_cookie().cloned().expect("session cookie");
    let home = b.get("/.menshen/").await;
    assert_eq!(home.status, 200);
    // Without the session's CSRF token, logout is refused and the session lives on.
    let refused = b.post_form("/.menshen/logout", &[("csrf", "wrong")]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(b.get("/x").await.status, 200);
    // GET /.menshen/logout only asks (no state change on GET).
    let confirm = b.get("/.menshen/logout").await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("id=\"logout-submit\""),
        "{}",
        confirm.body
    );
    assert_eq!(b.get("/x").await.status, 200);
    let out = b
        .post_form("/.menshen/logout", &[("csrf", &home.csrf())])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), Some("/.menshen/login?lo=1"));
    assert!(b.session_cookie().is_none(), "logout clears the cookie");
    // Replaying the old cookie does not work: the session ended on the server.
    let mut thief = Browser::new(&gw.base());
    thief.cookies.insert("menshen".into(), stolen);
    let page = thief.get("/x").await;
    assert_eq!(page.status, 302);
    // Signed out, the confirmation has nothing to confirm.
    assert_eq!(
        b.get("/.menshen/logout").await.location(),
        Some("/.menshen/login")
    );
}

async fn disabled_account_loses_its_sessions(sql: Sql, store: Store) {
    let (_up, gw) = start(sql, store).await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    assert_eq!(b.get("/x").await.status, 200);
    let out = gw.account_cli(&["disable", "teacher.one"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    menshen_tests::eventually(
        std::time::Duration::from_secs(15),
        "disabled session ends",
        || {
            let mut b2 = Browser::new(&gw.base());
            b2.cookies = b.cookies.clone();
            async move { b2.get("/x").await.status == 302 }
        },
    )
    .await;
    // And the password no longer opens it.
    let mut again = Browser::new(&gw.base());
    assert_eq!(again.login(STAFF.0, STAFF.2, "/").await.status, 401);
    let out = gw.account_cli(&["enable", "teacher.one"], None);
    assert!(out.status.success());
    assert_eq!(again.login(STAFF.0, STAFF.2, "/").await.status, 303);
}

#[tokio::test]
async fn a_cookie_planted_before_login_is_useless_after_it() {
    let (_up, gw) = start(Sql::Sqlite, Store::SharedRedis).await;
    let secret = Browser::new(&gw.base()).bind_otp(STAFF.0, STAFF.2).await;
    let planted = random_token();
    let mut victim = Browser::new(&gw.base());
    victim.cookies.insert("menshen".into(), planted.clone());
    let page = victim.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    let after_password = victim.session_cookie().cloned().expect("new cookie");
    assert_ne!(
        after_password, planted,
        "the password step must issue a new session id"
    );
    let page = victim
        .submit_otp(&menshen_otp::totp::code_at(
            &secret,
            menshen_tests::client::now() + 30,
        ))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let issued = victim.session_cookie().cloned().expect("new cookie");
    assert_ne!(
        issued, after_password,
        "the OTP step must issue a new session id again"
    );
    assert_eq!(victim.get("/x").await.status, 200);
    for stale in [planted, after_password] {
        let mut attacker = Browser::new(&gw.base());
        attacker.cookies.insert("menshen".into(), stale);
        assert_eq!(attacker.get("/x").await.status, 302);
    }
    // Two logins of the same person get two different ids.
    let mut other = Browser::new(&gw.base());
    assert_eq!(other.login(STAFF.0, STAFF.2, "/").await.status, 303);
    assert_ne!(other.session_cookie(), Some(&issued));
}

#[tokio::test]
async fn login_form_needs_its_csrf_token() {
    let (up, gw) = start(Sql::Sqlite, Store::Memory).await;
    let mut b = Browser::new(&gw.base());
    let page = b.get("/.menshen/login").await;
    let csrf = page.csrf();
    // A form posted from elsewhere has no matching token.
    let forged = b
        .post_form(
            "/.menshen/login",
            &[
                ("username", STAFF.0),
                ("password", STAFF.2),
                ("csrf", "forged"),
                ("rd", "/"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(b.session_cookie().is_none());
    let mut no_cookie = Browser::new(&gw.base());
    let page = no_cookie
        .post_form(
            "/.menshen/login",
            &[
                ("username", STAFF.0),
                ("password", STAFF.2),
                ("csrf", &csrf),
                ("rd", "/"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "token without its cookie is refused");
    assert!(no_cookie.session_cookie().is_none());
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn navigations_are_sent_to_login_and_other_requests_get_401() {
    let (up, gw) = start(Sql::Sqlite, Store::Memory).await;
    let mut b = Browser::new(&gw.base());
    let page = b.get("/students/list?grade=3&class=2").await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location(),
        Some("/.menshen/login?rd=%2Fstudents%2Flist%3Fgrade%3D3%26class%3D2")
    );
    let json = b
        .request(
            reqwest::Method::GET,
            "/api/x",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(json.status, 401);
    let xhr = b
        .request(
            reqwest::Method::GET,
            "/api/x",
            &[
                ("Accept", "text/html"),
                ("X-Requested-With", "XMLHttpRequest"),
            ],
            None,
        )
        .await;
    assert_eq!(xhr.status, 401);
    let post = b
        .request(
            reqwest::Method::POST,
            "/form",
            &[],
            Some(("a=1".into(), "application/x-www-form-urlencoded")),
        )
        .await;
    assert_eq!(post.status, 401);
    // The login page keeps the return target, and after login the user lands there.
    let login = b.get(page.location().unwrap_or("")).await;
    assert!(
        login
            .body
            .contains("name=\"rd\" value=\"/students/list?grade=3&#38;class=2\""),
        "{}",
        login.body
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn roles_and_deny_rules_are_enforced() {
    let (up, gw) = start(Sql::Sqlite, Store::Memory).await;
    let mut staff = Browser::new(&gw.base());
    assert_eq!(staff.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    assert_eq!(staff.get("/admin/users").await.status, 403);
    // Legacy IIS apps serve /Admin like /admin: the rule must catch every case.
    assert_eq!(staff.get("/ADMIN/users").await.status, 403);
    assert_eq!(staff.get("/blocked/x").await.status, 403);
    let mut aa = Browser::new(&gw.base());
    assert_eq!(aa.sign_in(AA.0, AA.2, "/").await.0.status, 303);
    let page = aa
        .request(
            reqwest::Method::GET,
            "/admin/users",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(Seen::parse(&page.body).one("x-menshen-roles"), Some("aa"));
    assert_eq!(
        aa.get("/blocked/x").await.status,
        403,
        "deny applies to everyone"
    );
    // Anonymous paths reach the app without a session and without any identity.
    let mut anon = Browser::new(&gw.base());
    let page = anon
        .request(
            reqwest::Method::GET,
            "/public/news",
            &[("Accept", "application/json"), ("X-Menshen-User", "admin")],
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(Seen::parse(&page.body).all("x-menshen-user").is_empty());
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn two_instances_share_sessions_through_redis_and_postgres() {
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
    // The second instance uses the first one's database and Redis prefix.
    let b = a.sibling().await;
    let mut on_a = Browser::new(&a.base());
    assert_eq!(on_a.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    let mut on_b = Browser::new(&b.base());
    on_b.cookies = on_a.cookies.clone();
    let page = on_b
        .request(
            reqwest::Method::GET,
            "/x",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        Seen::parse(&page.body).one("x-menshen-user"),
        Some("Teacher.One")
    );
    // Logging out on B ends the session on A too.
    let home = on_b.get("/.menshen/").await;
    assert_eq!(
        on_b.post_form("/.menshen/logout", &[("csrf", &home.csrf())])
            .await
            .status,
        303
    );
    assert_eq!(on_a.get("/x").await.status, 302);
}
