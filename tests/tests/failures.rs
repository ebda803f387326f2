//! Failing closed and answering bad input clearly: Redis gone, upstream gone, malformed
//! cookies, oversized or garbled forms, and session timeouts.

use std::time::Duration;

use menshen_tests::backends::PrivateRedis;
use menshen_tests::client::Browser;
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::random_token;
use menshen_tests::upstream::Upstream;

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");

#[tokio::test]
async fn redis_down_means_503_and_nobody_gets_in() {
    let up = Upstream::start().await;
    let mut redis = PrivateRedis::start();
    let gw = Gateway::start(
        Options {
            store: Store::RedisUrl(redis.url()),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    assert_eq!(b.get("/x").await.status, 200);
    let hits = up.hits();
    assert_eq!(b.get("/.menshen/health").await.status, 200);
    redis.stop();
    let health = b.get("/.menshen/health").await;
    assert_eq!(health.status, 503);
    assert!(health.body.contains("session store"));
    let page = b.get("/x").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("error-title"),
        "a branded page, not a bare status"
    );
    assert_eq!(page.header("retry-after"), Some("30"));
    // A new login cannot succeed either.
    let mut other = Browser::new(&gw.base());
    let page = other.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 503);
    assert!(other.session_cookie().is_none());
    assert_eq!(
        up.hits(),
        hits,
        "nothing reached the app while Redis was down"
    );
}

#[tokio::test]
async fn redis_unreachable_from_the_start_fails_closed() {
    let up = Upstream::start().await;
    let closed = menshen_tests::free_port();
    let gw = Gateway::start(
        Options {
            store: Store::RedisUrl(format!("redis://127.0.0.1:{closed}/0")),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.login(STAFF.0, STAFF.2, "/").await.status, 503);
    b.cookies.insert("menshen".into(), random_token());
    assert_eq!(b.get("/x").await.status, 503);
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn upstream_down_gives_the_branded_502_page() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Options::default(), up.addr, &[STAFF]).await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    assert_eq!(b.get("/x").await.status, 200);
    up.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let page = b.get("/y").await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("error-title"));
    assert!(page.header("content-security-policy").is_some());
}

#[tokio::test]
async fn malformed_cookies_get_a_clear_400_and_are_cleared() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Options::default(), up.addr, &[STAFF]).await;
    for bad in [
        "short",
        "x".repeat(43).replace('x', "!").as_str(),
        "a b",
        &"A".repeat(4000),
    ] {
        let mut b = Browser::new(&gw.base());
        b.cookies.insert("menshen".into(), bad.to_string());
        let page = b.get("/x").await;
        assert_eq!(page.status, 400, "cookie {bad:?}");
        let cleared = page.headers.get_all("set-cookie").iter().any(|v| {
            v.to_str().unwrap_or("").starts_with("menshen=;")
                && v.to_str().unwrap_or("").contains("Max-Age=0")
        });
        assert!(cleared, "the bad cookie is cleared");
    }
    // Two session cookies (one planted) are not guessed between: neither is used, the reply
    // clears the cookie, and the browser goes on to sign in (a 400 would lock its owner out
    // for as long as the planted copy lives).
    let t = random_token();
    let mut b = Browser::new(&gw.base());
    let page = b
        .request(
            reqwest::Method::GET,
            "/x",
            &[("Cookie", &format!("menshen={t}; menshen={t}"))],
            None,
        )
        .await;
    assert_eq!(page.status, 302);
    assert!(
        page.headers
            .get_all("set-cookie")
            .iter()
            .any(|v| { v.to_str().unwrap_or("").starts_with("menshen=;") })
    );
    // A well-formed but unknown id is simply no session.
    let mut b = Browser::new(&gw.base());
    b.cookies.insert("menshen".into(), random_token());
    assert_eq!(b.get("/x").await.status, 302);
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn bad_forms_get_clear_4xx_answers() {
    let up = Upstream::start().await;
    let gw = Gateway::start(Options::default(), up.addr, &[STAFF]).await;
    let mut b = Browser::new(&gw.base());
    let csrf = b.get("/.menshen/login").await.csrf();
    let big = format!(
        "csrf={csrf}&username=teacher&password={}",
        "a".repeat(20_000)
    );
    let page = b
        .request(
            reqwest::Method::POST,
            "/.menshen/login",
            &[],
            Some((big, "application/x-www-form-urlencoded")),
        )
        .await;
    assert_eq!(page.status, 413);
    let garbled = format!("csrf={csrf}&username=%ff%fe&password=x");
    let page = b
        .request(
            reqwest::Method::POST,
            "/.menshen/login",
            &[],
            Some((garbled, "application/x-www-form-urlencoded")),
        )
        .await;
    assert_eq!(page.status, 400);
    let bad_escape = format!("csrf={csrf}&username=%zz&password=x");
    let page = b
        .request(
            reqwest::Method::POST,
            "/.menshen/login",
            &[],
            Some((bad_escape, "application/x-www-form-urlencoded")),
        )
        .await;
    assert_eq!(page.status, 400);
    let json = r#"{"username":"teacher","password":"correct-horse-42"}"#.to_string();
    let page = b
        .request(
            reqwest::Method::POST,
            "/.menshen/login",
            &[],
            Some((json, "application/json")),
        )
        .await;
    assert_eq!(page.status, 400);
    let page = b
        .post_form(
            "/.menshen/login",
            &[("csrf", &csrf), ("username", "teacher")],
        )
        .await;
    assert_eq!(page.status, 400, "missing password");
    let page = b.get("/.menshen/login?rd=%zz").await;
    assert_eq!(page.status, 400, "garbled query string");
    assert!(b.session_cookie().is_none());
    // After all that, the real form still works.
    assert_eq!(b.login(STAFF.0, STAFF.2, "/").await.status, 303);
}

#[tokio::test]
async fn idle_timeout_ends_an_unused_session() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            // Each login step must fit in it on a loaded machine too.
            idle: "4s".into(),
            absolute: "1h".into(),
            store: Store::SharedRedis,
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    assert_eq!(b.get("/x").await.status, 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(b.get("/x").await.status, 302);
}

#[tokio::test]
async fn absolute_timeout_ends_a_session_in_use() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            // Wide enough that each login step (argon2 runs at idle priority) fits in the idle
            // timeout on a loaded machine.
            idle: "4s".into(),
            absolute: "8s".into(),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    let start = std::time::Instant::now();
    // Used every half second, so the idle timeout never fires; the absolute one must.
    let mut ended = false;
    while start.elapsed() < Duration::from_secs(20) {
        let status = b.get("/x").await.status;
        if status == 302 {
            ended = true;
            break;
        }
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(ended, "the session outlived its absolute timeout");
    assert!(
        start.elapsed() >= Duration::from_secs(4),
        "it lived past the idle timeout first"
    );
}
