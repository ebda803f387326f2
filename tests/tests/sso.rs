//! Single sign-on (`[portal]`) through the real gateway: sign in once on the portal, reach two
//! sites; hand-off codes that are single use, bound to one host, short-lived and tied to the
//! portal session; single logout across sites and instances; the portal's same-origin rules.
//!
//! Each test browser talks to one host (a `Host` header of its own and a cookie jar of its own),
//! as a real browser keeps host-only cookies apart.

use std::time::Duration;

use menshen_tests::backends::Sql;
use menshen_tests::client::{Browser, Page, scrape_metrics};
use menshen_tests::eventually;
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::upstream::{Seen, Upstream};
use sha2::{Digest, Sha256};

const STAFF: (&str, &str, &str) = ("teacher.one", "staff", "correct-horse-42");

/// A gateway with the portal at `login.test`, the site `app` (app.test) and the site `hr`
/// (hr.test, where only AA accounts may open /aa-only/).
async fn start(sql: Sql, store: Store) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let extra_sites = format!(
        r#"
[[site]]
name = "hr"
hosts = ["hr.test"]
upstreams = ["{}"]

[[site.rule]]
path = "/aa-only/"
access = "roles"
roles = ["aa"]

[portal]
host = "login.test"
"#,
        up.addr
    );
    let gw = Gateway::start(
        Options {
            sql,
            store,
            metrics: true,
            extra_sites,
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    (up, gw)
}

/// A browser on `host` (name without port) of a gateway listening on `port`.
fn browser_on(base: &str, host: &str, port: u16) -> Browser {
    let mut b = Browser::new(base);
    b.host = Some(format!("{host}:{port}"));
    b
}

/// Path and query of an absolute URL on `host:port`, checking it is there.
fn path_on(url: &str, host: &str, port: u16) -> String {
    let prefix = format!("http://{host}:{port}");
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not on {prefix}"))
        .to_string()
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Signs in on the portal (binding OTP first) and returns its browser, after a site sent the
/// person there with `login_url`. Returns the portal browser and the page the OTP step ended
/// on (a redirect into the portal's hand-off).
async fn sign_in_at_portal(gw: &Gateway, login_url: &str) -> (Browser, Page) {
    let mut portal = browser_on(&gw.base(), "login.test", gw.port);
    let rd = query_value(login_url, "rd").expect("the login URL carries rd");
    let page = portal.get(&path_on(login_url, "login.test", gw.port)).await;
    assert_eq!(page.status, 200, "portal login page: {}", page.body);
    let (done, _) = portal.sign_in(STAFF.0, STAFF.2, &rd).await;
    (portal, done)
}

/// Asserts the hand-off counters the gateway's metrics show.
async fn assert_handoffs(gw: &Gateway, expected: &[(&str, u64)]) {
    let metrics = scrape_metrics(gw.metrics_port.expect("metrics")).await;
    for (result, n) in expected {
        let line = format!("menshen_handoffs_total{{result=\"{result}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

/// A browser on the `app` site sent to the portal, signed in there: the app's browser, the
/// portal's, and where the OTP step sent the portal browser (its hand-off).
async fn signed_in_from_app(gw: &Gateway) -> (Browser, Browser, String) {
    let mut app = browser_on(&gw.base(), "app.test", gw.port);
    let login_url = app.get("/x").await.location().expect("login").to_string();
    let (portal, done) = sign_in_at_portal(gw, &login_url).await;
    let landing = done.location().expect("landing").to_string();
    (app, portal, landing)
}

/// Follows the portal's hand-off redirect on `site` and returns the site's page it leads to.
async fn redeem(site: &mut Browser, handoff_url: &str, host: &str, port: u16) -> Page {
    site.get(&path_on(handoff_url, host, port)).await
}

#[tokio::test]
async fn one_sign_in_reaches_both_sites_and_one_logout_ends_both() {
    let (_up, gw) = start(Sql::Sqlite, Store::SharedRedis).await;
    let port = gw.port;
    let mut app = browser_on(&gw.base(), "app.test", port);

    // 1. A site sends an unauthenticated navigation to the portal, with the absolute URL.
    let page = app.get("/students?id=7").await;
    assert_eq!(page.status, 302);
    let login_url = page.location().expect("location").to_string();
    assert_eq!(
        login_url,
        format!(
            "http://login.test:{port}/.menshen/login?rd=http%3A%2F%2Fapp.test%3A{port}%2Fstudents%3Fid%3D7"
        )
    );

    // 2. Password + OTP on the portal; the OTP step lands on the portal's hand-off, which
    //    sends the browser to the site with a one-time code.
    let (mut portal, done) = sign_in_at_portal(&gw, &login_url).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let landing = done.location().expect("landing").to_string();
    assert!(landing.starts_with("/.menshen/login?rd="), "{landing}");
    let handoff = portal.get(&landing).await;
    assert_eq!(handoff.status, 302, "{}", handoff.body);
    let handoff_url = handoff.location().expect("hand-off").to_string();
    assert!(
        handoff_url.starts_with(&format!("http://app.test:{port}/.menshen/handoff?code=")),
        "{handoff_url}"
    );
    let code = query_value(&handoff_url, "code").expect("code");
    assert_eq!(code.len(), 43, "256 bits");

    // 3. The site redeems it and sets its own host-only session cookie.
    let page = redeem(&mut app, &handoff_url, "app.test", port).await;
    assert_eq!(page.status, 302, "{}\n{}", page.body, gw.log());
    assert_eq!(page.location(), Some("/students?id=7"));
    let set_cookie = page.header("set-cookie").expect("a site session cookie");
    assert!(set_cookie.starts_with("menshen="), "{set_cookie}");
    assert!(
        !set_cookie.to_ascii_lowercase().contains("domain"),
        "host-only: {set_cookie}"
    );
    assert_ne!(
        app.session_cookie(),
        portal.session_cookie(),
        "a session of its own"
    );
    let page = app.get("/students?id=7").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = Seen::parse(&page.body);
    assert_eq!(seen.one("x-menshen-user"), Some(STAFF.0));
    assert_eq!(seen.one("x-menshen-auth-method"), Some("password+otp"));
    assert_eq!(seen.uri, "/students?id=7");

    // 4. The second site asks for nothing: portal → hand-off → page, no password, no OTP.
    let mut hr = browser_on(&gw.base(), "hr.test", port);
    let page = hr.get("/payroll").await;
    assert_eq!(page.status, 302);
    let login_url = page.location().expect("location").to_string();
    let page = portal.get(&path_on(&login_url, "login.test", port)).await;
    assert_eq!(
        page.status, 302,
        "a complete portal session hands off at once: {}",
        page.body
    );
    let hr_handoff = page.location().expect("hand-off").to_string();
    let page = redeem(&mut hr, &hr_handoff, "hr.test", port).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.location(), Some("/payroll"));
    let page = hr.get("/payroll").await;
    assert_eq!(page.status, 200);
    let seen = Seen::parse(&page.body);
    assert_eq!(seen.one("x-menshen-user"), Some(STAFF.0));
    assert_eq!(seen.one("x-menshen-auth-method"), Some("password+otp"));
    // Each site's own rules still apply.
    assert_eq!(hr.get("/aa-only/x").await.status, 403);
    assert_eq!(app.get("/blocked/x").await.status, 403);

    // 5. The code was single use: a replay (any browser) gets the clear page and no session.
    let mut thief = browser_on(&gw.base(), "hr.test", port);
    let page = redeem(&mut thief, &hr_handoff, "hr.test", port).await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("登入連結已失效"), "{}", page.body);
    assert!(thief.session_cookie().is_none());
    assert_eq!(thief.get("/payroll").await.status, 302);

    // 6. The portal lists both systems; the sites' /.menshen/ pages live on the portal.
    let page = portal.get("/.menshen/").await;
    assert_eq!(page.status, 200);
    // Each site by its first configured host (the test site lists 127.0.0.1 first).
    assert!(
        page.body
            .contains(&format!("href=\"http://127.0.0.1:{port}/\"")),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("href=\"http://hr.test:{port}/\""))
    );
    assert!(page.body.contains("登出所有系統"));
    let page = app.get("/.menshen/account?tab=activity").await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location(),
        Some(format!("http://login.test:{port}/.menshen/account?tab=activity").as_str())
    );
    // Every hand-off is on record in the activity log.
    let rows = gw.sql(
        "SELECT detail FROM activity WHERE event = 'handoff' AND outcome = 'success' ORDER BY id",
    );
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        [format!("app.test:{port}"), format!("hr.test:{port}")]
    );

    // 7. GET /.menshen/logout on a site only asks; the POST ends every linked session.
    let page = hr.get("/.menshen/logout").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("登出所有系統"), "{}", page.body);
    assert_eq!(
        app.get("/students").await.status,
        200,
        "GET changed nothing"
    );
    let csrf = page.csrf();
    let page = hr.post_form("/.menshen/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some(format!("http://login.test:{port}/.menshen/login?lo=1").as_str())
    );
    eventually(
        Duration::from_secs(5),
        "the other site's session ends",
        || {
            let mut app = app.clone();
            async move { app.get("/students").await.status == 302 }
        },
    )
    .await;
    assert_eq!(hr.get("/payroll").await.status, 302);
    let page = portal.get("/.menshen/").await;
    assert_eq!(page.status, 302, "the portal session ended too");
    let page = portal.get("/.menshen/login?lo=1").await;
    assert!(page.body.contains("已登出所有系統"), "{}", page.body);
    assert_eq!(
        gw.sql("SELECT count(*) FROM activity WHERE event = 'logout' AND outcome = 'everywhere'"),
        "1"
    );

    assert_handoffs(&gw, &[("issued", 2), ("redeemed", 2), ("replayed", 1)]).await;
}

#[tokio::test]
async fn codes_are_bound_to_their_host_their_time_and_their_portal_session() {
    let (_up, gw) = start(Sql::Sqlite, Store::SharedRedis).await;
    let port = gw.port;
    let (mut app, mut portal, landing) = signed_in_from_app(&gw).await;

    // A code for app.test presented on hr.test: refused, and used up for app.test as well.
    let handoff = portal
        .get(&landing)
        .await
        .location()
        .expect("hand-off")
        .to_string();
    let code = query_value(&handoff, "code").expect("code");
    let mut hr = browser_on(&gw.base(), "hr.test", port);
    let page = hr.get(&format!("/.menshen/handoff?code={code}")).await;
    assert_eq!(page.status, 410);
    assert!(hr.session_cookie().is_none());
    let page = app.get(&format!("/.menshen/handoff?code={code}")).await;
    assert_eq!(page.status, 410, "a code shown on the wrong host is burnt");
    assert!(app.session_cookie().is_none());

    // An expired code (its record written as the portal would have, 2 minutes ago).
    let redis = gw.redis.as_ref().expect("redis");
    let stale = menshen_tests::random_token();
    let key = format!(
        "{}handoff:{}",
        redis.prefix,
        hex::encode(Sha256::digest(stale.as_bytes()))
    );
    let now = menshen_tests::client::now();
    let grant = serde_json::json!({
        "host": format!("app.test:{port}"),
        "path": "/x",
        "portal_key": "00".repeat(32),
        "issued_at": now - 120,
    });
    let client = redis::Client::open(redis.url.as_str()).expect("redis");
    let mut conn = client.get_connection().expect("redis connection");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(grant.to_string())
        .arg("EX")
        .arg(60)
        .query(&mut conn)
        .expect("SET");
    let page = app.get(&format!("/.menshen/handoff?code={stale}")).await;
    assert_eq!(page.status, 410);
    assert!(app.session_cookie().is_none());

    // Malformed and made-up codes.
    for code in ["", "abc", &menshen_tests::random_token(), "%2e%2e%2f"] {
        let page = app.get(&format!("/.menshen/handoff?code={code}")).await;
        assert_eq!(page.status, 410, "{code:?}");
    }
    // A query that is not even text: the generic bad-request page.
    assert_eq!(app.get("/.menshen/handoff?code=%00%ff").await.status, 400);
    assert!(app.session_cookie().is_none());

    // A code whose portal session has ended before it was used.
    let handoff = portal
        .get(&landing)
        .await
        .location()
        .expect("hand-off")
        .to_string();
    let page = portal.get("/.menshen/logout").await;
    let csrf = page.csrf();
    let page = portal
        .post_form("/.menshen/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    let page = redeem(&mut app, &handoff, "app.test", port).await;
    assert_eq!(page.status, 410, "{}", page.body);
    assert!(app.session_cookie().is_none());
    assert_eq!(app.get("/x").await.status, 302);

    assert_handoffs(
        &gw,
        &[
            ("wrong_host", 1),
            ("replayed", 1),
            ("expired", 1),
            ("session_ended", 1),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_portal_refuses_return_targets_off_its_own_hosts() {
    let (_up, gw) = start(Sql::Sqlite, Store::Memory).await;
    let port = gw.port;
    let (_, mut portal, _) = signed_in_from_app(&gw).await;
    let refused = [
        "http://evil.test/".to_string(),
        format!("http://evil.test:{port}/"),
        format!("http://app.test.evil.test:{port}/"),
        format!("http://app.test:{port}@evil.test/"),
        format!("http://evil.test\\@app.test:{port}/"),
        format!("http://evil.test%2f@app.test:{port}/"),
        format!("http://app%2etest:{port}/"),
        "http://app.test:1/".to_string(),
        format!("https://app.test:{port}/"),
        format!("//app.test:{port}/"),
        format!("http:/\\app.test:{port}/"),
        format!("http://app.test:{port}//evil.test"),
        format!("http://app.test:{port}/.menshen/login"),
        format!("javascript://app.test:{port}/%0aalert(1)"),
    ];
    for rd in &refused {
        let encoded: String = form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let page = portal.get(&format!("/.menshen/login?rd={encoded}")).await;
        assert_eq!(page.status, 200, "{rd}: no redirect, the login page again");
        assert!(page.location().is_none(), "{rd}");
        assert!(
            !page.body.contains("evil.test"),
            "{rd} is not kept in the form"
        );
    }
    // The portal's own URL is a local path.
    let own: String = form_urlencoded::byte_serialize(
        format!("http://login.test:{port}/.menshen/account").as_bytes(),
    )
    .collect();
    let page = portal.get(&format!("/.menshen/login?rd={own}")).await;
    assert_eq!(
        page.status, 200,
        "reserved paths are not return targets either"
    );

    // An API call without a session is told where to sign in: the portal.
    let mut api = browser_on(&gw.base(), "app.test", port);
    let page = api
        .request(
            reqwest::Method::GET,
            "/x",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(
        page.header("www-authenticate"),
        Some(format!("Menshen login=\"http://login.test:{port}/.menshen/login\"").as_str())
    );

    // The portal proxies nothing.
    assert_eq!(portal.get("/").await.location(), Some("/.menshen/"));
    assert_eq!(portal.get("/students").await.status, 404);
}

#[tokio::test]
async fn cross_site_forms_are_refused_on_the_portal() {
    let (_up, gw) = start(Sql::Sqlite, Store::Memory).await;
    let port = gw.port;
    let (_, mut portal, _) = signed_in_from_app(&gw).await;
    let csrf = portal.get("/.menshen/logout").await.csrf();
    let body = menshen_tests::client::form(&[("csrf", &csrf)]);
    let own = format!("http://login.test:{port}");
    let sibling = format!("http://app.test:{port}");
    for headers in [
        vec![("Origin", sibling.as_str())],
        vec![("Origin", "http://evil.test")],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![("Sec-Fetch-Site", "same-site"), ("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site"), ("Origin", own.as_str())],
    ] {
        let page = portal
            .request(
                reqwest::Method::POST,
                "/.menshen/logout",
                &headers,
                Some((body.clone(), "application/x-www-form-urlencoded")),
            )
            .await;
        assert_eq!(page.status, 403, "{headers:?}");
        assert_eq!(
            portal.get("/.menshen/").await.status,
            200,
            "still signed in"
        );
    }
    let page = portal
        .request(
            reqwest::Method::POST,
            "/.menshen/logout",
            // What Chromium sends for our own no-referrer pages' forms.
            &[("Origin", "null"), ("Sec-Fetch-Site", "same-origin")],
            Some((body, "application/x-www-form-urlencoded")),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(portal.get("/.menshen/").await.status, 302);
}

#[tokio::test]
async fn a_code_from_one_instance_is_redeemed_at_another_and_logout_reaches_both() {
    let (_up, gw) = start(Sql::Postgres, Store::SharedRedis).await;
    let port = gw.port;
    let other = gw.sibling().await;
    let mut app = browser_on(&gw.base(), "app.test", port);
    let login_url = app.get("/x").await.location().expect("login").to_string();
    let (mut portal, done) = sign_in_at_portal(&gw, &login_url).await;
    let handoff = portal
        .get(done.location().expect("landing"))
        .await
        .location()
        .expect("hand-off")
        .to_string();

    // The browser's next connection lands on the other instance (same host name).
    let mut app2 = browser_on(&other.base(), "app.test", port);
    let page = redeem(&mut app2, &handoff, "app.test", port).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(app2.get("/x").await.status, 200);
    // Replayed at the first instance: refused.
    assert_eq!(
        redeem(&mut app, &handoff, "app.test", port).await.status,
        410
    );

    // hr on the first instance, then logout on the second: both sites and the portal end.
    let mut hr = browser_on(&gw.base(), "hr.test", port);
    let login_url = hr.get("/").await.location().expect("login").to_string();
    let hr_handoff = portal
        .get(&path_on(&login_url, "login.test", port))
        .await
        .location()
        .expect("hand-off")
        .to_string();
    assert_eq!(
        redeem(&mut hr, &hr_handoff, "hr.test", port).await.status,
        302
    );
    assert_eq!(hr.get("/").await.status, 200);
    let csrf = app2.get("/.menshen/logout").await.csrf();
    assert_eq!(
        app2.post_form("/.menshen/logout", &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    eventually(
        Duration::from_secs(5),
        "hr on the first instance ends",
        || {
            let mut hr = hr.clone();
            async move { hr.get("/").await.status == 302 }
        },
    )
    .await;
    assert_eq!(portal.get("/.menshen/").await.status, 302);
}

#[tokio::test]
async fn the_account_page_lists_sign_ins_and_ends_them() {
    let (_up, gw) = start(Sql::Sqlite, Store::SharedRedis).await;
    let port = gw.port;
    // Device A signs in from the registry and reaches it through the hand-off.
    let mut app = browser_on(&gw.base(), "app.test", port);
    let login_url = app.get("/x").await.location().expect("login").to_string();
    let mut portal = browser_on(&gw.base(), "login.test", port);
    let secret = portal.bind_otp(STAFF.0, STAFF.2).await;
    let rd = query_value(&login_url, "rd").expect("rd");
    let done = portal.login_with_otp(STAFF.0, STAFF.2, &rd, &secret).await;
    // The step that login used, or a later one (read after it): never an earlier one.
    let used_step = (menshen_tests::client::now() + 30) / 30;
    let handoff = portal
        .get(done.location().expect("landing"))
        .await
        .location()
        .expect("hand-off")
        .to_string();
    assert_eq!(
        redeem(&mut app, &handoff, "app.test", port).await.status,
        302
    );
    assert_eq!(app.get("/x").await.status, 200);

    // Device B: another browser signs in on the portal (a fresh OTP step).
    let mut other = browser_on(&gw.base(), "login.test", port);
    let page = other.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/otp"));
    let code = menshen_tests::client::fresh_code(&secret, used_step).await;
    assert_eq!(other.submit_otp(&code).await.status, 303);
    assert_eq!(other.get("/.menshen/").await.status, 200);

    // A's list: two sign-ins, A first with the registry among its systems, B with a button.
    let page = portal.get("/.menshen/account?tab=activity").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let table = page
        .body
        .split("<table id=\"sign-ins-table\"")
        .nth(1)
        .expect("the list");
    let table = table.split("</table>").next().unwrap_or("");
    assert_eq!(table.matches("class=\"sign-in-row").count(), 2, "{table}");
    let first = table.split("class=\"sign-in-row").nth(1).unwrap_or("");
    assert!(first.contains("目前使用的裝置"), "{first}");
    assert!(first.contains(&format!("app.test:{port}")), "{first}");
    assert!(first.contains("127.0.0.1"));
    let marker = "action=\"/.menshen/account/sessions/";
    let start = table.find(marker).expect("B has a sign-out button") + marker.len();
    let handle = &table[start..start + table[start..].find('/').expect("handle end")];
    let csrf = page.csrf();

    // 登出此裝置 ends B only, and needs the form's token.
    let refused = portal
        .post_form(
            &format!("/.menshen/account/sessions/{handle}/end"),
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(other.get("/.menshen/").await.status, 200);
    let page = portal
        .post_form(
            &format!("/.menshen/account/sessions/{handle}/end"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=activity&msg=device")
    );
    assert_eq!(other.get("/.menshen/").await.status, 302, "B is signed out");
    assert_eq!(portal.get("/.menshen/").await.status, 200, "A is not");
    assert_eq!(app.get("/x").await.status, 200);

    // 登出所有裝置 ends A too, with its site session.
    let page = portal
        .post_form("/.menshen/account/sessions/end-all", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/.menshen/login?lo=1"));
    assert_eq!(portal.get("/.menshen/").await.status, 302);
    eventually(Duration::from_secs(5), "the registry session ends", || {
        let mut app = app.clone();
        async move { app.get("/x").await.status == 302 }
    })
    .await;
    assert_eq!(
        gw.sql("SELECT outcome FROM activity WHERE event = 'logout' ORDER BY id"),
        "device\nall_devices"
    );
}
