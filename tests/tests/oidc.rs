//! Google / education-cloud accounts through a real OpenID Connect provider (`oidc-provider`
//! on loopback): binding from the login settings, login followed by OTP, and every way the
//! flow can go wrong.

use menshen_otp::totp;
use menshen_tests::client::{Browser, now};
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::oidc::{TestProvider, decline_at_provider, log_in_at_provider, path_of};
use menshen_tests::upstream::{Seen, Upstream};

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");
const OTHER: (&str, &str, &str) = ("other", "staff", "correct-horse-43");

struct Setup {
    gw: Gateway,
    _provider: TestProvider,
    _up: Upstream,
}

fn oidc_toml(issuer: &str) -> String {
    format!(
        "[[oidc]]\nid = \"google\"\ndisplay_name = \"Google 帳號\"\nbutton_label = \"Google帳號登入\"\nissuer = \"{issuer}\"\nclient_id = \"menshen\"\nclient_secret = \"s3cret-client\"\n"
    )
}

async fn setup(issuer_override: Option<&str>) -> Setup {
    setup_with(issuer_override, "").await
}

/// [`setup`] with more lines for the provider's `[[oidc]]` table.
async fn setup_with(issuer_override: Option<&str>, provider_extra: &str) -> Setup {
    let port = menshen_tests::free_port();
    let callback = format!("http://127.0.0.1:{port}/.menshen/oidc/google/callback");
    let provider = TestProvider::start("menshen", "s3cret-client", &[callback]);
    let up = Upstream::start().await;
    let issuer = issuer_override.unwrap_or(&provider.issuer).to_string();
    let gw = Gateway::start(
        Options {
            port: Some(port),
            store: Store::SharedRedis,
            extra: format!("{}{provider_extra}", oidc_toml(&issuer)),
            ..Options::default()
        },
        up.addr,
        &[STAFF, OTHER],
    )
    .await;
    Setup {
        gw,
        _provider: provider,
        _up: up,
    }
}

/// Signs in with password + OTP and binds the provider account `login` from the settings.
async fn bind_google(
    b: &mut Browser,
    who: (&str, &str, &str),
    login: &str,
) -> (menshen_tests::client::Page, totp::Secret) {
    let (page, secret) = b.sign_in(who.0, who.2, "/").await;
    assert_eq!(page.status, 303);
    let settings = b.get("/.menshen/account?tab=settings").await;
    assert!(
        settings.body.contains("id=\"bind-google\""),
        "{}",
        settings.body
    );
    let auth = b.start_oidc_bind("google", who.2).await;
    let callback = log_in_at_provider(&auth, login).await;
    (b.get(&path_of(&callback)).await, secret)
}

#[tokio::test]
async fn an_external_account_that_was_never_bound_gets_the_manuals_message() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let login = b.get("/.menshen/login").await;
    assert!(
        login.body.contains("Google帳號登入"),
        "a button per provider"
    );
    let auth = b.start_oidc("google", "rd=%2Fx").await;
    assert!(
        auth.contains("code_challenge_method=S256") && auth.contains("nonce="),
        "{auth}"
    );
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    let page = b.get(&path_of(&callback)).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("error-title"));
    assert!(b.session_cookie().is_none());
    assert_eq!(
        s.gw.sql("SELECT outcome FROM activity WHERE method = 'oidc:google'"),
        "not_bound"
    );
}

#[tokio::test]
async fn bind_then_log_in_with_the_provider_and_otp() {
    let s = setup(None).await;
    let mut elsewhere = Browser::new(&s.gw.base());
    let mut b = Browser::new(&s.gw.base());
    let (page, secret) = bind_google(&mut b, STAFF, "teacher1@example.edu.tw").await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=bound&p=google")
    );
    let settings = b.get(page.location().unwrap_or("")).await;
    assert!(
        settings.body.contains("teacher1@example.edu.tw"),
        "the bound account is shown"
    );
    assert!(settings.body.contains("id=\"unbind-google\""));
    // Identity is (issuer, subject), not email.
    assert_eq!(s.gw.sql("SELECT subject FROM oidc_bindings"), "g-1001");
    assert!(
        s.gw.sql("SELECT event || ':' || method || ':' || outcome FROM activity")
            .contains("bind:oidc:google:success")
    );
    // The binding ended the account's other sessions but kept this one.
    elsewhere.cookies = b.cookies.clone();
    assert_eq!(b.get("/x").await.status, 200);
    // Log out, then in with the provider: OTP follows, then the app.
    let home = b.get("/.menshen/").await;
    b.post_form("/.menshen/logout", &[("csrf", &home.csrf())])
        .await;
    let auth = b.start_oidc("google", "rd=%2Fgrades").await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    let page = b.get(&path_of(&callback)).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/otp"));
    assert_eq!(
        b.get("/grades").await.location(),
        Some("/.menshen/otp"),
        "nothing before the OTP"
    );
    // The sign-in above used the step after the binding's; the next code must be later still.
    let used =
        s.gw.sql("SELECT last_step FROM otp_bindings")
            .parse::<u64>()
            .unwrap_or(0);
    let page = b
        .submit_otp(&menshen_tests::client::fresh_code(&secret, used).await)
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/grades"));
    let page = b
        .request(
            reqwest::Method::GET,
            "/grades",
            &[("Accept", "application/json")],
            None,
        )
        .await;
    let seen = Seen::parse(&page.body);
    assert_eq!(seen.one("x-menshen-auth-method"), Some("oidc:google+otp"));
    assert_eq!(seen.one("x-menshen-user"), Some("teacher"));
}

#[tokio::test]
async fn one_external_account_binds_to_one_menshen_account() {
    let s = setup(None).await;
    let mut a = Browser::new(&s.gw.base());
    let (page, _) = bind_google(&mut a, STAFF, "teacher1@example.edu.tw").await;
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=bound&p=google")
    );
    let mut b = Browser::new(&s.gw.base());
    let (page, _) = bind_google(&mut b, OTHER, "teacher1@example.edu.tw").await;
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=conflict&p=google")
    );
    let shown = b.get(page.location().unwrap_or("")).await;
    assert!(shown.body.contains("id=\"message\""));
    assert!(
        !shown.body.contains("teacher1@example.edu.tw") && !shown.body.contains(">teacher<"),
        "the other account is never revealed"
    );
    assert_eq!(s.gw.sql("SELECT COUNT(*) FROM oidc_bindings"), "1");
    // Re-binding replaces: A binds another provider account instead.
    let auth = a.start_oidc_bind("google", STAFF.2).await;
    let callback = log_in_at_provider(&auth, "teacher2@example.edu.tw").await;
    a.get(&path_of(&callback)).await;
    assert_eq!(s.gw.sql("SELECT subject FROM oidc_bindings"), "g-1002");
    // Unbinding is possible; then that provider account is unknown again.
    let settings = a.get("/.menshen/account?tab=settings").await;
    assert!(settings.body.contains("name=\"current_password\""));
    // Without the current password (a stolen session), nothing is unlinked.
    let page = a
        .post_form(
            "/.menshen/account/oidc/google/unbind",
            &[("csrf", &settings.csrf())],
        )
        .await;
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=reauth_missing")
    );
    assert_eq!(s.gw.sql("SELECT COUNT(*) FROM oidc_bindings"), "1");
    let page = a
        .post_form(
            "/.menshen/account/oidc/google/unbind",
            &[
                ("csrf", &settings.csrf()),
                ("current_password", "wrong-horse"),
            ],
        )
        .await;
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=reauth_wrong")
    );
    assert_eq!(s.gw.sql("SELECT COUNT(*) FROM oidc_bindings"), "1");
    let page = a
        .post_form(
            "/.menshen/account/oidc/google/unbind",
            &[("csrf", &settings.csrf()), ("current_password", STAFF.2)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=unbound&p=google")
    );
    assert_eq!(s.gw.sql("SELECT COUNT(*) FROM oidc_bindings"), "0");
    let mut c = Browser::new(&s.gw.base());
    let auth = c.start_oidc("google", "").await;
    let callback = log_in_at_provider(&auth, "teacher2@example.edu.tw").await;
    assert_eq!(c.get(&path_of(&callback)).await.status, 403);
}

#[tokio::test]
async fn state_is_single_use_and_bound_to_the_browser() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let auth = b.start_oidc("google", "").await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    // Another browser (an attacker replaying the link) is refused.
    let mut other = Browser::new(&s.gw.base());
    assert_eq!(other.get(&path_of(&callback)).await.status, 400);
    // The state was used up by that attempt: the real browser cannot reuse it either.
    assert_eq!(b.get(&path_of(&callback)).await.status, 400);
    // A made-up state is refused too.
    assert_eq!(
        b.get("/.menshen/oidc/google/callback?state=forged&code=x")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn a_wrong_nonce_or_a_code_from_another_provider_is_refused() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let auth = b.start_oidc("google", "").await;
    let tampered = auth
        .split('&')
        .map(|part| {
            if part.starts_with("nonce=") {
                "nonce=not-the-one".to_string()
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    let callback = log_in_at_provider(&tampered, "teacher1@example.edu.tw").await;
    let page = b.get(&path_of(&callback)).await;
    assert_eq!(page.status, 401, "wrong nonce: {}", page.body);
    assert!(b.session_cookie().is_none());
    // A second provider instance (another issuer, other keys) with the same client: its code
    // means nothing to the configured provider.
    let second = TestProvider::start(
        "menshen",
        "s3cret-client",
        &[format!("{}/.menshen/oidc/google/callback", s.gw.base())],
    );
    let auth = b.start_oidc("google", "").await;
    let elsewhere = auth.replacen(&s._provider.issuer, &second.issuer, 1);
    let callback = log_in_at_provider(&elsewhere, "teacher1@example.edu.tw").await;
    let page = b.get(&path_of(&callback)).await;
    assert_eq!(page.status, 401, "foreign code: {}", page.body);
    assert!(b.session_cookie().is_none());
}

#[tokio::test]
async fn declining_and_a_provider_that_is_down_get_clear_pages() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let auth = b.start_oidc("google", "").await;
    let callback = decline_at_provider(&auth).await;
    assert!(callback.contains("error=access_denied"));
    let page = b.get(&path_of(&callback)).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("error-title"));
    assert!(b.session_cookie().is_none());
    let closed = format!("http://127.0.0.1:{}", menshen_tests::free_port());
    let down = setup(Some(&closed)).await;
    let mut b = Browser::new(&down.gw.base());
    let page = b.get("/.menshen/oidc/google/start").await;
    assert_eq!(page.status, 502, "{}", page.body);
}

#[tokio::test]
async fn the_otp_lockout_applies_after_the_provider() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let (_, secret) = bind_google(&mut b, STAFF, "teacher1@example.edu.tw").await;
    let mut g = Browser::new(&s.gw.base());
    let auth = g.start_oidc("google", "").await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    assert_eq!(
        g.get(&path_of(&callback)).await.location(),
        Some("/.menshen/otp")
    );
    assert_eq!(g.submit_otp("111111").await.status, 401);
    assert_eq!(g.submit_otp("222222").await.status, 401);
    assert_eq!(g.submit_otp("333333").await.status, 403);
    assert_eq!(
        g.submit_otp(&totp::code_at(&secret, now() + 30))
            .await
            .status,
        403,
        "suspended"
    );
    assert_eq!(g.get("/x").await.location(), Some("/.menshen/otp"));
}

#[tokio::test]
async fn linking_needs_the_current_password_and_a_post_with_the_token() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let (page, _) = b.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    // The old GET start for binding is refused: no state change without the token.
    let get = b.get("/.menshen/oidc/google/start?purpose=bind").await;
    assert_eq!(get.status, 405, "{}", get.body);
    // A POST without the token is refused even with the password.
    let no_token = b
        .post_form(
            "/.menshen/oidc/google/start",
            &[("purpose", "bind"), ("current_password", STAFF.2)],
        )
        .await;
    assert_eq!(no_token.status, 403);
    // A stolen session alone (no password) cannot link another account.
    let page = b.post_bind_start("google", &[]).await;
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=reauth_missing")
    );
    let page = b
        .post_bind_start("google", &[("current_password", "not-the-password")])
        .await;
    assert_eq!(
        page.location(),
        Some("/.menshen/account?tab=settings&msg=reauth_wrong")
    );
    let shown = b.get(page.location().unwrap_or("")).await;
    assert!(shown.body.contains("目前的密碼"), "{}", shown.body);
    assert_eq!(s.gw.sql("SELECT COUNT(*) FROM oidc_bindings"), "0");
    assert_eq!(
        s.gw.sql(
            "SELECT COUNT(*) FROM activity WHERE event = 'reauth' AND outcome = 'failure' \
             AND detail = 'oidc:google'"
        ),
        "1"
    );
    // With it, the provider flow starts and links.
    let auth = b.start_oidc_bind("google", STAFF.2).await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    let done = b.get(&path_of(&callback)).await;
    assert_eq!(
        done.location(),
        Some("/.menshen/account?tab=settings&msg=bound&p=google")
    );
    assert_eq!(s.gw.sql("SELECT COUNT(*) FROM oidc_bindings"), "1");
}

/// The login form's double-submit cookie, whichever name the gateway uses here.
fn csrf_cookie(b: &Browser) -> Option<String> {
    b.cookies
        .iter()
        .find(|(k, _)| k.ends_with("menshen-csrf"))
        .map(|(_, v)| v.clone())
}

#[tokio::test]
async fn a_provider_login_gets_a_new_csrf_token() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    bind_google(&mut b, STAFF, "teacher1@example.edu.tw").await;
    let mut g = Browser::new(&s.gw.base());
    let before = g.get("/.menshen/login").await;
    assert_eq!(before.status, 200);
    let old = csrf_cookie(&g).expect("the login page sets the CSRF cookie");
    let auth = g.start_oidc("google", "").await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    let page = g.get(&path_of(&callback)).await;
    assert_eq!(page.location(), Some("/.menshen/otp"), "{}", page.body);
    let new = csrf_cookie(&g).expect("a CSRF cookie after the login");
    assert_ne!(new, old, "the pre-login token does not carry over");
    // The OTP page's token is the new session's own, neither of the above.
    let otp = g.get("/.menshen/otp").await;
    assert_ne!(otp.csrf(), old);
}

#[tokio::test]
async fn a_provider_trusted_alone_still_respects_a_suspension() {
    let s = setup_with(None, "require_otp = false\n").await;
    let mut b = Browser::new(&s.gw.base());
    bind_google(&mut b, STAFF, "teacher1@example.edu.tw").await;
    // Three wrong passwords suspend the account.
    for wrong in ["wrong-1", "wrong-2", "wrong-3"] {
        Browser::new(&s.gw.base()).login(STAFF.0, wrong, "/").await;
    }
    let mut g = Browser::new(&s.gw.base());
    let auth = g.start_oidc("google", "rd=%2Fgrades").await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    let page = g.get(&path_of(&callback)).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("帳號暫停使用中"), "{}", page.body);
    assert!(
        g.session_cookie().is_none(),
        "no session for a suspended account"
    );
    assert!(
        s.gw.sql("SELECT event || ':' || method || ':' || outcome FROM activity")
            .contains("login:oidc:google:locked")
    );
    // Once lifted, the provider alone signs in again.
    let out = s.gw.account_cli(&["unlock", STAFF.0], None);
    assert!(out.status.success());
    let mut h = Browser::new(&s.gw.base());
    let auth = h.start_oidc("google", "rd=%2Fgrades").await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    let page = h.get(&path_of(&callback)).await;
    assert_eq!(page.location(), Some("/grades"), "{}", page.body);
}

#[tokio::test]
async fn a_binding_change_gives_the_kept_session_a_new_csrf_token() {
    let s = setup(None).await;
    let mut b = Browser::new(&s.gw.base());
    let (_, _) = b.sign_in(STAFF.0, STAFF.2, "/").await;
    let before = b.get("/.menshen/account?tab=settings").await.csrf();
    let auth = b.start_oidc_bind("google", STAFF.2).await;
    let callback = log_in_at_provider(&auth, "teacher1@example.edu.tw").await;
    b.get(&path_of(&callback)).await;
    let after = b.get("/.menshen/account?tab=settings").await.csrf();
    assert_ne!(after, before);
}

#[tokio::test]
async fn a_loop_of_provider_starts_does_not_fill_redis() {
    let s = setup(None).await;
    let mut started = 0;
    let mut throttled = 0;
    for _ in 0..120 {
        let page = Browser::new(&s.gw.base())
            .get("/.menshen/oidc/google/start")
            .await;
        match page.status {
            302 => started += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}: {}", page.body),
        }
    }
    assert!(
        throttled > 0 && started <= 60,
        "{started} started, {throttled} refused"
    );
    let flows =
        s.gw.redis
            .as_ref()
            .map(|r| r.keys())
            .unwrap_or_default()
            .iter()
            .filter(|k| k.contains(":oidc:"))
            .count();
    assert!(flows <= 60, "{flows} flows stored");
}
