//! Account recovery against a real SMTP server (aiosmtpd on loopback): 忘記密碼 mails a
//! single-use link to the address on file, the link sets a new password and ends every
//! session on every instance, a newer link voids the older, unknown names get the same answer
//! and no mail; 修改密碼 from the profile; the help page; and the forgot page without `[mail]`.
//! Real gateway, real Redis and SQL.

use menshen_tests::client::{Browser, Page, hidden_value};
use menshen_tests::gateway::{Gateway, Options, Store};
use menshen_tests::smtp::{Mail, TestSmtp, reset_link};
use menshen_tests::upstream::Upstream;

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");
/// The address `Gateway::add_account` puts on file.
const ADDRESS: &str = "t@example.org";
const NEW_PASSWORD: &str = "a brand new passphrase 2026";
const RESET: &str = "門神 Menshen 重設密碼連結";
const CHANGED: &str = "您的密碼已變更";

/// A gateway mailing through `smtp`; `captcha` is `[captcha] mode`, which the forgot form
/// follows like the login form.
async fn start(smtp: &TestSmtp, store: Store, captcha: &'static str) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            store,
            captcha,
            extra: smtp.mail_table(None),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    (up, gw)
}

/// Opens the forgot form and sends `login` with the right captcha.
async fn request_link(b: &mut Browser, gw: &Gateway, login: &str) -> Page {
    let page = b.get("/.menshen/password/forgot").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let captcha = page
        .body
        .contains("name=\"captcha_id\"")
        .then(|| gw.captcha_answer(&page.body));
    let csrf = page.csrf();
    let mut fields = vec![("login", login), ("csrf", csrf.as_str())];
    if let Some((id, answer)) = &captcha {
        fields.push(("captcha_id", id));
        fields.push(("captcha", answer));
    }
    b.post_form("/.menshen/password/forgot", &fields).await
}

/// The path and query of a mailed link (the test talks to the gateway by its port).
fn path_of(link: &str) -> String {
    let at = link.find("/.menshen/").expect("a Menshen link");
    link[at..].to_string()
}

fn link_in(mail: &Mail) -> String {
    reset_link(mail.text.as_deref().expect("a text part")).expect("a reset link in the mail")
}

/// Opens the link and submits a new password; returns the answer to the POST.
async fn use_link(b: &mut Browser, link: &str, password: &str, confirm: &str) -> Page {
    let form = b.get(&path_of(link)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let token = hidden_value(&form.body, "token").expect("token field");
    b.post_form(
        "/.menshen/password/reset",
        &[
            ("token", &token),
            ("password", password),
            ("password_confirm", confirm),
            ("csrf", &form.csrf()),
        ],
    )
    .await
}

#[tokio::test]
async fn a_mailed_link_resets_the_password_once_and_keeps_the_second_factor() {
    let smtp = TestSmtp::start();
    let (_up, gw) = start(&smtp, Store::SharedRedis, "off").await;
    let mut owner = Browser::new(&gw.base());
    let (signed_in, _secret) = owner.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);

    let mut b = Browser::new(&gw.base());
    let page = request_link(&mut b, &gw, STAFF.0).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("重設密碼的連結已寄出"), "{}", page.body);
    let mails = smtp.wait_for_subject(ADDRESS, RESET, 1).await;
    let mail = &mails[0];
    // Well-formed: one sender, the account's address, a decoded UTF-8 subject sent as an
    // RFC 2047 encoded word, text and HTML alternatives, no parser defects.
    assert_eq!(mail.rcpt_tos, vec![ADDRESS.to_string()]);
    assert!(
        mail.from.contains("noreply@school.example"),
        "{}",
        mail.from
    );
    assert_eq!(mail.subject, "門神 Menshen 重設密碼連結");
    assert!(
        mail.raw_headers
            .to_ascii_lowercase()
            .contains("subject: =?utf-8?"),
        "{}",
        mail.raw_headers
    );
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(mail.structure.contains(&"text/plain".to_string()));
    assert!(mail.structure.contains(&"text/html".to_string()));
    assert!(mail.defects.is_empty(), "{:?}", mail.defects);
    assert!(!mail.date.is_empty() && !mail.message_id.is_empty());
    let link = link_in(mail);
    assert!(
        link.starts_with(&format!("http://127.0.0.1:{}/", gw.port)),
        "{link}"
    );
    let html = mail.html.as_deref().expect("html part");
    assert!(
        html.contains(&format!("href=\"{}\"", link.replace('&', "&amp;"))),
        "{html}"
    );
    let text = mail.text.as_deref().unwrap_or("");
    assert!(
        text.contains("王小明") && text.contains("30 分鐘"),
        "{text}"
    );
    // The token is stored only as a hash.
    let token = link.split("token=").nth(1).expect("token");
    let keys = gw.redis.as_ref().expect("redis").keys();
    assert!(keys.iter().all(|k| !k.contains(token)), "{keys:?}");

    // Mismatched confirmation and a too-short password: refused, the link still works.
    let page = use_link(&mut b, &link, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("兩次輸入的新密碼不相同"),
        "{}",
        page.body
    );
    let page = use_link(&mut b, &link, "short", "short").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("密碼太短"), "{}", page.body);

    let page = use_link(&mut b, &link, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/login?reset=1"));
    let login = b.get("/.menshen/login?reset=1").await;
    assert!(login.body.contains("密碼已重設"), "{}", login.body);
    // Used once: the link is dead now, for GET and POST alike.
    let again = b.get(&path_of(&link)).await;
    assert_eq!(again.status, 410);
    assert!(again.body.contains("連結已失效"));
    assert!(again.body.contains("href=\"/.menshen/password/forgot\""));

    // The owner's session ended; the old password no longer works; the new one does and
    // still asks for the OTP code.
    let page = owner.get("/students").await;
    assert_eq!(page.status, 302, "the old session must be gone");
    let mut fresh = Browser::new(&gw.base());
    assert_eq!(fresh.login(STAFF.0, STAFF.2, "/").await.status, 401);
    let page = fresh.login(STAFF.0, NEW_PASSWORD, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/otp"));

    // The notice 您的密碼已變更, and the activity log.
    let mails = smtp.wait_for_subject(ADDRESS, CHANGED, 1).await;
    assert!(mails[0].defects.is_empty());
    let log = gw.sql(
        "SELECT event || ':' || outcome FROM activity WHERE event LIKE 'password%' ORDER BY id",
    );
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec!["password_reset_request:sent", "password_reset:success"]
    );
}

#[tokio::test]
async fn a_newer_link_voids_the_older_and_unknown_names_get_the_same_answer() {
    let smtp = TestSmtp::start();
    let (_up, gw) = start(&smtp, Store::SharedRedis, "always").await;
    let mut b = Browser::new(&gw.base());
    let unknown = request_link(&mut b, &gw, "nobody.here").await;
    let no_mail_address = request_link(&mut b, &gw, "nobody@example.org").await;
    let first = request_link(&mut b, &gw, STAFF.0).await;
    // By address, as the form allows.
    let second = request_link(&mut b, &gw, ADDRESS).await;
    // A wrong captcha is refused before anything is looked up.
    let page = b.get("/.menshen/password/forgot").await;
    assert!(page.body.contains("id=\"captcha-image\""));
    let (id, _) = gw.captcha_answer(&page.body);
    let wrong = b
        .post_form(
            "/.menshen/password/forgot",
            &[
                ("login", STAFF.0),
                ("captcha_id", &id),
                ("captcha", "WRONG"),
                ("csrf", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("驗證碼錯誤"));
    assert!(wrong.body.contains("value=\"teacher\""), "the name is kept");
    for page in [&unknown, &no_mail_address, &first, &second] {
        assert_eq!(page.status, 200);
        assert_eq!(
            menshen_tests::client::element_text(&page.body, "message"),
            menshen_tests::client::element_text(&second.body, "message"),
        );
    }
    let mails = smtp.wait_for(ADDRESS, 2).await;
    // One queue, in order: had the unknown names produced mail, it would be here already.
    assert_eq!(smtp.messages().len(), 2, "no mail for unknown names");
    let (old, new) = (link_in(&mails[0]), link_in(&mails[1]));
    assert_ne!(old, new);
    assert_eq!(
        b.get(&path_of(&old)).await.status,
        410,
        "replaced by the newer link"
    );
    let page = use_link(&mut b, &new, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    // A link issued before the password changed is void even if it were the latest.
    assert_eq!(b.get(&path_of(&new)).await.status, 410);
    // Garbage tokens get the same page, without a store lookup error.
    for bad in ["", "x", "%2F..%2F", &"A".repeat(43)] {
        let page = b
            .get(&format!("/.menshen/password/reset?token={bad}"))
            .await;
        assert_eq!(page.status, 410, "{bad}");
    }
}

#[tokio::test]
async fn requests_per_account_are_limited_without_saying_so() {
    let smtp = TestSmtp::start();
    let (_up, gw) = start(&smtp, Store::SharedRedis, "always").await;
    let mut b = Browser::new(&gw.base());
    for _ in 0..5 {
        let page = request_link(&mut b, &gw, STAFF.0).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("重設密碼的連結已寄出"));
    }
    smtp.wait_for(ADDRESS, 3).await;
    // A marker request by address after the limit: still no more than three mails.
    let log =
        gw.sql("SELECT outcome FROM activity WHERE event = 'password_reset_request' ORDER BY id");
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec!["sent", "sent", "sent", "limited", "limited"]
    );
    assert_eq!(smtp.to(ADDRESS).len(), 3);
}

#[tokio::test]
async fn a_reset_ends_the_sessions_on_every_instance() {
    let smtp = TestSmtp::start();
    let (_up, gw) = start(&smtp, Store::SharedRedis, "off").await;
    let sibling = gw.sibling().await;
    let mut here = Browser::new(&gw.base());
    let (page, secret) = here.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303);
    let mut there = Browser::new(&sibling.base());
    second_sign_in(&mut there, &secret).await;
    assert_eq!(there.get("/students").await.status, 200);
    assert_eq!(here.get("/students").await.status, 200);

    let mut b = Browser::new(&gw.base());
    request_link(&mut b, &gw, STAFF.0).await;
    let mails = smtp.wait_for_subject(ADDRESS, RESET, 1).await;
    let page = use_link(&mut b, &link_in(&mails[0]), NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(here.get("/students").await.status, 302);
    assert_eq!(there.get("/students").await.status, 302);
}

/// A second complete sign-in of STAFF: each OTP code is accepted once, so this waits for a
/// step after the one the first sign-in used.
async fn second_sign_in(b: &mut Browser, secret: &menshen_otp::totp::Secret) {
    let used = menshen_tests::client::now() / 30 + 1;
    let page = b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    let code = menshen_tests::client::fresh_code(secret, used).await;
    let page = b.submit_otp(&code).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

async fn change(b: &mut Browser, current: &str, new: &str, confirm: &str, csrf: &str) -> Page {
    b.post_form(
        "/.menshen/password/change",
        &[
            ("current_password", current),
            ("password", new),
            ("password_confirm", confirm),
            ("csrf", csrf),
        ],
    )
    .await
}

#[tokio::test]
async fn the_password_is_changed_from_the_profile() {
    let smtp = TestSmtp::start();
    let (_up, gw) = start(&smtp, Store::SharedRedis, "off").await;
    let mut other = Browser::new(&gw.base());
    let (_, secret) = other.sign_in(STAFF.0, STAFF.2, "/").await;
    let mut b = Browser::new(&gw.base());
    second_sign_in(&mut b, &secret).await;
    let account = b.get("/.menshen/account").await;
    assert!(
        account.body.contains("id=\"change-password\" class=\"button button-secondary\" href=\"/.menshen/password/change\""),
        "{}",
        account.body
    );
    let form = b.get("/.menshen/password/change").await;
    assert_eq!(form.status, 200);
    for field in ["current_password", "password", "password_confirm", "csrf"] {
        assert!(form.body.contains(&format!("name=\"{field}\"")), "{field}");
    }
    let csrf = form.csrf();
    let page = change(&mut b, "wrong-password", NEW_PASSWORD, NEW_PASSWORD, &csrf).await;
    assert_eq!(page.status, 401);
    assert!(page.body.contains("目前的密碼錯誤"), "{}", page.body);
    let page = change(&mut b, STAFF.2, "tiny", "tiny", &csrf).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("密碼太短"));
    let page = change(&mut b, STAFF.2, NEW_PASSWORD, NEW_PASSWORD, "forged").await;
    assert_eq!(page.status, 403);
    let before = b.session_cookie().cloned();
    let page = change(&mut b, STAFF.2, NEW_PASSWORD, NEW_PASSWORD, &csrf).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/.menshen/account?msg=password_changed")
    );
    assert_ne!(b.session_cookie().cloned(), before, "a new session id");
    let account = b.get("/.menshen/account?msg=password_changed").await;
    assert_eq!(account.status, 200, "this browser goes on");
    assert!(account.body.contains("密碼已修改"));
    assert_eq!(
        other.get("/students").await.status,
        302,
        "other sessions end"
    );
    let mut fresh = Browser::new(&gw.base());
    assert_eq!(fresh.login(STAFF.0, STAFF.2, "/").await.status, 401);
    assert_eq!(fresh.login(STAFF.0, NEW_PASSWORD, "/").await.status, 303);
    let mails = smtp.wait_for_subject(ADDRESS, CHANGED, 1).await;
    assert!(
        mails[0]
            .text
            .as_deref()
            .unwrap_or("")
            .contains("在個人資料管理中修改")
    );
    let log =
        gw.sql("SELECT event || ':' || outcome FROM activity WHERE event = 'password_change'");
    assert_eq!(log.trim(), "password_change:success");
    // Not signed in: the form is not served.
    let mut anon = Browser::new(&gw.base());
    let page = anon.get("/.menshen/password/change").await;
    assert_eq!(page.status, 302);
}

#[tokio::test]
async fn help_and_forgot_pages_without_mail_say_whom_to_ask() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            login: "argon2_max_concurrent = 2\nsupport = \"教務處 分機 123\"\nhelp = \"上班時間 08:00-17:00\"\n"
                .into(),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    let login = b.get("/.menshen/login").await;
    assert!(
        login
            .body
            .contains("id=\"forgot-password\" href=\"/.menshen/help#forgot-password\"")
    );
    assert!(
        login
            .body
            .contains("id=\"forgot-account\" href=\"/.menshen/help#forgot-account\"")
    );
    let help = b.get("/.menshen/help").await;
    assert_eq!(help.status, 200);
    for text in [
        "忘記帳號",
        "忘記密碼",
        "帳號被暫停",
        "換手機或換卡",
        "教務處 分機 123",
        "上班時間 08:00-17:00",
    ] {
        assert!(help.body.contains(text), "{text}");
    }
    assert!(!help.body.contains("/.menshen/password/forgot"));
    let forgot = b.get("/.menshen/password/forgot").await;
    assert_eq!(forgot.status, 200);
    assert!(forgot.body.contains("無法以電子郵件重設密碼"));
    assert!(!forgot.body.contains("name=\"login\""));
    let page = b
        .post_form(
            "/.menshen/password/forgot",
            &[("login", STAFF.0), ("csrf", "none")],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("無法以電子郵件重設密碼"));
    assert_eq!(b.post_form("/.menshen/help", &[]).await.status, 405);
}

#[tokio::test]
async fn the_person_is_told_of_a_suspension_and_of_a_new_second_factor() {
    let smtp = TestSmtp::start();
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            store: Store::SharedRedis,
            extra: smtp.mail_table(None),
            login: "argon2_max_concurrent = 2\nsupport = \"教務處 分機 123\"\n".into(),
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut b = Browser::new(&gw.base());
    b.bind_otp(STAFF.0, STAFF.2).await;
    let bound = smtp
        .wait_for_subject(ADDRESS, "您的帳號已綁定新的登入方式", 1)
        .await;
    assert!(bound[0].text.as_deref().unwrap_or("").contains("OTP"));
    assert!(bound[0].defects.is_empty());
    for _ in 0..3 {
        b.login(STAFF.0, "wrong-password-here", "/").await;
    }
    let page = b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 403, "suspended");
    assert!(
        page.body
            .contains("學校管理者 (AA 帳號) 或客服可提前解除暫停")
    );
    let suspended = smtp
        .wait_for_subject(ADDRESS, "您的帳號已暫停登入", 1)
        .await;
    let text = suspended[0].text.as_deref().unwrap_or("");
    assert!(
        text.contains("127.0.0.1") && text.contains("教務處 分機 123"),
        "{text}"
    );
    let log =
        gw.sql("SELECT detail || ':' || outcome FROM activity WHERE event = 'notice' ORDER BY id");
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec!["factor_bound:sent", "suspended:sent"]
    );
    // Further lockouts within the hour are capped (5 notices per account).
    for _ in 0..6 {
        gw.account_cli(&["unlock", STAFF.0], None);
        for _ in 0..3 {
            b.login(STAFF.0, "wrong-password-here", "/").await;
        }
    }
    let log = gw.sql("SELECT outcome FROM activity WHERE event = 'notice' AND outcome = 'limited'");
    assert!(!log.trim().is_empty(), "the cap was reached");
    smtp.wait_for_subject(ADDRESS, "您的帳號已暫停登入", 4)
        .await;
    assert!(smtp.to(ADDRESS).len() <= 5, "at most five notices an hour");
}
