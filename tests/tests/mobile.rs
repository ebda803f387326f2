//! Mobile citizen certificate (行動自然人憑證) binding and sign-in through the real gateway,
//! against the real `twfido-standin` playing MOI's SP API: the forms, the waiting page, the
//! status endpoint, each failure's code, forged and foreign results, MOI down or slow, AA
//! accounts, lockouts, and one use of each sign-in.

use std::time::Duration;

use menshen_otp::sealed::Keyring;
use menshen_tests::client::{Browser, Page, scrape_metrics};
use menshen_tests::gateway::{Gateway, OTP_KEYS, Options};
use menshen_tests::twfido::Standin;
use menshen_tests::upstream::{Seen, Upstream};
use serde_json::{Value, json};

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");
const AA: (&str, &str, &str) = ("school.aa", "aa", "admin-horse-4242");
/// The stand-in's people (valid check digits): the holder (王小明, like the test accounts'
/// display name), someone else, someone without a bound phone, a revoked certificate.
const HOLDER: &str = "A123456789";
const STRANGER: &str = "B223456782";
const NO_DEVICE: &str = "C123456781";
const REVOKED: &str = "D123456782";
/// Well formed, but MOI does not know it.
const UNREGISTERED: &str = "A800000014";

async fn standin() -> Standin {
    Standin::start(env!("CARGO_BIN_EXE_twfido-standin")).await
}

/// A gateway whose `[certificate]` and `[mobile_certificate]` come from the stand-in's
/// fragment; `mobile_extra` goes inside `[mobile_certificate]`, `tables` after it.
async fn start_with(
    standin: &Standin,
    fragment: &str,
    mobile_extra: &str,
    tables: &str,
) -> (Upstream, Gateway) {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            extra: format!("{fragment}{mobile_extra}\n{tables}"),
            metrics: true,
            ..Options::default()
        },
        up.addr,
        &[STAFF, AA],
    )
    .await;
    let _ = standin;
    (up, gw)
}

async fn start(standin: &Standin) -> (Upstream, Gateway) {
    start_with(standin, &standin.fragment(), "", "").await
}

fn json_of(page: &Page) -> Value {
    serde_json::from_str(&page.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", page.status, page.body))
}

/// The newest ticket the stand-in issued, and for whom.
async fn last_ticket(standin: &Standin) -> (String, String) {
    standin
        .tickets()
        .await
        .pop()
        .expect("the stand-in issued a ticket")
}

/// Sends the form (login or bind) and returns the answer.
async fn submit(
    b: &mut Browser,
    purpose: &str,
    csrf: &str,
    id: &str,
    mode: &str,
    more: &[(&str, &str)],
) -> Page {
    let mut fields = vec![
        ("purpose", purpose),
        ("csrf", csrf),
        ("id_number", id),
        ("mode", mode),
    ];
    fields.extend_from_slice(more);
    b.post_form("/.menshen/mobile", &fields).await
}

/// Opens the sign-in form and sends it; asserts the waiting page follows.
async fn start_login(b: &mut Browser, id: &str, mode: &str, rd: &str) -> Page {
    let form = b.get(&format!("/.menshen/mobile?rd={rd}")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let page = submit(b, "login", &form.csrf(), id, mode, &[("rd", rd)]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/mobile/wait?purpose=login"));
    page
}

async fn status(b: &mut Browser, purpose: &str) -> Value {
    let page = b
        .get(&format!("/.menshen/mobile/status?purpose={purpose}"))
        .await;
    json_of(&page)
}

/// Polls the status endpoint (as the page's script does) until it is no longer pending.
async fn outcome(b: &mut Browser, purpose: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..20 {
        last = status(b, purpose).await;
        if last["state"] != "pending" {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("still pending: {last}");
}

/// Signs in as `id`, the phone approving; returns the browser and the final status.
async fn sign_in(gw: &Gateway, standin: &Standin, id: &str, rd: &str) -> (Browser, Value) {
    let mut b = Browser::new(&gw.base());
    start_login(&mut b, id, "push", rd).await;
    let (ticket, _) = last_ticket(standin).await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    let answer = outcome(&mut b, "login").await;
    (b, answer)
}

/// The forced binding of a fresh staff login, by `mode`, approved on the phone.
async fn bind(gw: &Gateway, standin: &Standin, id: &str, mode: &str) -> Value {
    let mut b = Browser::new(&gw.base());
    let page = b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/bind"));
    let form = b.get("/.menshen/bind/mobile").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let page = submit(&mut b, "bind", &form.csrf(), id, mode, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/mobile/wait?purpose=bind"));
    let (ticket, _) = last_ticket(standin).await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    outcome(&mut b, "bind").await
}

fn id_hash(id: &str) -> String {
    Keyring::parse(OTP_KEYS)
        .expect("test keyring")
        .keyed_hashes("mobile-certificate id", id.as_bytes())
        .remove(0)
}

#[tokio::test]
async fn bind_by_qr_then_sign_in_by_push() {
    let standin = standin().await;
    let (up, gw) = start(&standin).await;

    // The login page offers the method, keeping the return target.
    let mut b = Browser::new(&gw.base());
    let login = b.get("/.menshen/login?rd=/students").await;
    assert!(
        login
            .body
            .contains(r#"href="/.menshen/mobile?rd=%2Fstudents">行動自然人憑證APP登入</a>"#),
        "{}",
        login.body
    );

    // The forced binding page lists the method; its form goes by QR.
    let page = b.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/bind"));
    let choice = b.get("/.menshen/bind").await;
    assert!(
        choice.body.contains(r#"href="/.menshen/bind/mobile""#),
        "{}",
        choice.body
    );
    let form = b.get("/.menshen/bind/mobile").await;
    assert!(form.body.contains(r#"name="purpose" value="bind""#));
    let page = submit(&mut b, "bind", &form.csrf(), " a123456789 ", "qr", &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let wait = b.get("/.menshen/mobile/wait?purpose=bind").await;
    assert_eq!(wait.status, 200, "{}", wait.body);
    assert!(
        wait.body
            .contains(r#"id="mobile-qr" src="data:image/svg+xml"#),
        "the server draws the QR code: {}",
        wait.body
    );
    assert!(wait.body.contains("******6789"), "{}", wait.body);
    // MOI got the canonical ID, by ATH-01 with op_mode I-SCAN, signing our challenge.
    let requests = standin.requests().await;
    let qr = requests
        .iter()
        .rfind(|r| r["interface"] == "ATH-01")
        .expect("a QR ticket request");
    assert_eq!(qr["interface"], "ATH-01", "{qr}");
    assert_eq!(qr["body"]["id_num"], HOLDER, "{qr}");
    assert_eq!(qr["body"]["op_mode"], "I-SCAN", "{qr}");
    assert_eq!(qr["body"]["op_code"], "SIGN", "{qr}");

    // Pending until the phone approves.
    assert_eq!(status(&mut b, "bind").await["state"], "pending");
    let (ticket, id) = last_ticket(&standin).await;
    assert_eq!(id, HOLDER);
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    // The page asks often; Menshen asks MOI at most every 4 s.
    let done = outcome(&mut b, "bind").await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["next"], "/.menshen/login?bound=1");
    assert!(b.session_cookie().is_none(), "the binding session ended");
    // Stored as a keyed hash, never the ID.
    let stored = gw.sql("SELECT id_hash, subject_name, id_last4 FROM mobile_bindings");
    assert_eq!(stored, format!("{}|王小明|6789", id_hash(HOLDER)));
    assert!(!stored.contains(HOLDER));

    // Signing in by push lands on the app as mobile-certificate.
    let (mut b, answer) = sign_in(&gw, &standin, HOLDER, "/students").await;
    assert_eq!(answer["state"], "done", "{answer}");
    assert_eq!(answer["next"], "/students");
    let push = standin.requests().await;
    let push = push
        .iter()
        .rfind(|r| r["interface"] == "ATH-03")
        .expect("a push");
    assert!(push["body"].get("op_mode").is_none(), "{push}");
    let app = b.get("/students").await;
    assert_eq!(app.status, 200, "{}", app.body);
    let seen = Seen::parse(&app.body);
    assert_eq!(
        seen.one("X-Menshen-Auth-Method"),
        Some("mobile-certificate")
    );
    assert_eq!(seen.one("X-Menshen-User"), Some(STAFF.0));
    assert_eq!(up.hits(), 1);

    // The settings page shows the binding with the holder.
    let settings = b.get("/.menshen/account?tab=settings").await;
    assert!(
        settings.body.contains("王小明（身分證末四碼 6789）"),
        "{}",
        settings.body
    );

    // One use: the finished sign-in cannot be completed again.
    let again = status(&mut b, "login").await;
    assert_eq!(again["state"], "failed", "{again}");
    let activity = gw.sql(
        "SELECT event || ':' || outcome FROM activity WHERE method = 'mobile-certificate' \
         ORDER BY id",
    );
    assert_eq!(activity, "bind:success\nlogin:success", "{activity}");
    let metrics = scrape_metrics(gw.metrics_port.expect("metrics")).await;
    assert!(
        metrics.contains(r#"menshen_logins_total{method="mobile-certificate",result="success"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn each_failure_has_its_code_and_sentence() {
    let standin = standin().await;
    let (_up, gw) = start(&standin).await;
    assert_eq!(bind(&gw, &standin, HOLDER, "push").await["state"], "done");

    // A typo never reaches MOI.
    let before = standin.requests().await.len();
    let mut b = Browser::new(&gw.base());
    let form = b.get("/.menshen/mobile?rd=/").await;
    for bad in ["A123456788", "A12345678", "Z12345678X", ""] {
        let page = submit(&mut b, "login", &form.csrf(), bad, "push", &[]).await;
        assert_eq!(page.status, 400, "{bad}: {}", page.body);
        assert!(page.body.contains("格式錯誤"), "{}", page.body);
    }
    let page = submit(&mut b, "login", &form.csrf(), HOLDER, "sms", &[]).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(standin.requests().await.len(), before, "MOI was not asked");

    // A stale form.
    let page = submit(&mut b, "login", "not-the-token", HOLDER, "push", &[]).await;
    assert_eq!(page.status, 410, "{}", page.body);

    // No phone bound to the ID: the form comes back with QR chosen and the steps open.
    let page = submit(&mut b, "login", &form.csrf(), NO_DEVICE, "push", &[]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("尚未在手機綁定"), "{}", page.body);
    assert!(page.body.contains(r#"value="qr" checked"#), "{}", page.body);
    assert!(
        page.body.contains(r#"class="bind-notes" open"#),
        "{}",
        page.body
    );
    // Not registered at MOI at all.
    let page = submit(&mut b, "login", &form.csrf(), UNREGISTERED, "qr", &[]).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("尚未註冊行動自然人憑證"),
        "{}",
        page.body
    );

    // Declined, expired: the status says so, and the waiting page shows the form again.
    for (control, code, sentence) in [
        ("decline", "declined", "拒絕"),
        ("expire", "expired", "逾時"),
    ] {
        let mut b = Browser::new(&gw.base());
        start_login(&mut b, HOLDER, "push", "/").await;
        let (ticket, _) = last_ticket(&standin).await;
        standin
            .control(control, json!({ "sp_ticket_id": ticket }))
            .await;
        let answer = outcome(&mut b, "login").await;
        assert_eq!(answer["state"], "failed", "{answer}");
        assert_eq!(answer["error"], code, "{answer}");
        assert!(
            answer["message"].as_str().unwrap_or("").contains(sentence),
            "{answer}"
        );
        let page = b.get("/.menshen/mobile/wait?purpose=login").await;
        assert!(page.body.contains(sentence), "{}", page.body);
        assert!(page.body.contains(r#"id="mobile-form""#), "{}", page.body);
    }

    // Someone MOI knows who has no Menshen account.
    let (_, answer) = sign_in(&gw, &standin, STRANGER, "/").await;
    assert_eq!(answer["error"], "not_bound", "{answer}");
    // A revoked certificate: refused whatever it is bound to.
    let (_, answer) = sign_in(&gw, &standin, REVOKED, "/").await;
    assert_eq!(answer["error"], "revoked", "{answer}");

    // In English too.
    let mut b = Browser::new(&gw.base());
    b.get("/.menshen/login?lang=en").await;
    let form = b.get("/.menshen/mobile").await;
    let page = submit(&mut b, "login", &form.csrf(), NO_DEVICE, "push", &[]).await;
    assert!(page.body.contains("No phone is bound"), "{}", page.body);

    let activity = gw.sql(
        "SELECT outcome FROM activity WHERE method = 'mobile-certificate' AND event = 'login' \
         ORDER BY id",
    );
    for code in [
        "no_device",
        "unknown_id",
        "declined",
        "expired",
        "not_bound",
        "revoked",
    ] {
        assert!(activity.contains(code), "{code}: {activity}");
    }
}

#[tokio::test]
async fn forged_foreign_and_replayed_results_are_refused() {
    let standin = standin().await;
    let (up, gw) = start(&standin).await;
    assert_eq!(bind(&gw, &standin, HOLDER, "push").await["state"], "done");

    // MOI's answer with an idp_checksum that does not open.
    standin.control("break", json!({ "on": true })).await;
    let mut b = Browser::new(&gw.base());
    let form = b.get("/.menshen/mobile").await;
    let page = submit(&mut b, "login", &form.csrf(), HOLDER, "push", &[]).await;
    assert_eq!(
        page.status, 503,
        "a ticket with a bad checksum: {}",
        page.body
    );
    standin.control("break", json!({ "on": false })).await;
    let mut b = Browser::new(&gw.base());
    start_login(&mut b, HOLDER, "push", "/").await;
    let (ticket, _) = last_ticket(&standin).await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    standin.control("break", json!({ "on": true })).await;
    let answer = outcome(&mut b, "login").await;
    assert_eq!(answer["error"], "invalid_result", "{answer}");
    standin.control("break", json!({ "on": false })).await;

    // The phone signs with another person's certificate.
    standin
        .control(
            "certificate",
            json!({ "id_num": HOLDER, "person": "stranger" }),
        )
        .await;
    let (_, answer) = sign_in(&gw, &standin, HOLDER, "/").await;
    assert_eq!(answer["error"], "id_mismatch", "{answer}");
    standin
        .control(
            "certificate",
            json!({ "id_num": HOLDER, "person": "default" }),
        )
        .await;

    // A result that names another ID than the ticket.
    standin
        .control("report-id", json!({ "id_num": HOLDER, "as": STRANGER }))
        .await;
    let (_, answer) = sign_in(&gw, &standin, HOLDER, "/").await;
    assert_eq!(answer["error"], "id_mismatch", "{answer}");
    standin
        .control("report-id", json!({ "id_num": HOLDER, "as": HOLDER }))
        .await;

    // A signature replayed from an earlier sign-in: it does not cover this challenge.
    let (earlier, _) = last_ticket(&standin).await;
    let mut b = Browser::new(&gw.base());
    start_login(&mut b, HOLDER, "push", "/").await;
    let (ticket, _) = last_ticket(&standin).await;
    standin
        .control("replay", json!({ "sp_ticket_id": ticket, "from": earlier }))
        .await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    let answer = outcome(&mut b, "login").await;
    assert_eq!(answer["error"], "invalid_result", "{answer}");

    // Another browser cannot complete (or even see) someone's pending sign-in.
    let mut owner = Browser::new(&gw.base());
    start_login(&mut owner, HOLDER, "push", "/").await;
    let (ticket, _) = last_ticket(&standin).await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    let mut other = Browser::new(&gw.base());
    other.get("/.menshen/mobile").await;
    assert_eq!(status(&mut other, "login").await["state"], "failed");
    assert!(other.session_cookie().is_none());
    assert_eq!(outcome(&mut owner, "login").await["state"], "done");

    // Nothing reached the app but the one good sign-in's page views (none here).
    assert_eq!(up.hits(), 0);
    let refused = gw.sql(
        "SELECT COUNT(*) FROM activity WHERE method = 'mobile-certificate' \
         AND outcome IN ('invalid_result', 'id_mismatch')",
    );
    assert_eq!(refused, "4");
}

#[tokio::test]
async fn moi_down_or_slow_is_temporarily_unavailable() {
    let standin = standin().await;
    // MOI unreachable: nothing listens at the configured address.
    let down = format!("http://127.0.0.1:{}", menshen_tests::free_port());
    let fragment = standin.fragment().replace(&standin.base, &down);
    let (_up, gw) = start_with(&standin, &fragment, "request_timeout = \"1s\"", "").await;
    let mut b = Browser::new(&gw.base());
    let form = b.get("/.menshen/mobile").await;
    let page = submit(&mut b, "login", &form.csrf(), HOLDER, "push", &[]).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("暫時無法使用"), "{}", page.body);
    assert!(b.session_cookie().is_none());
    drop(gw);

    // MOI slower than the request timeout: the same answer, promptly.
    let (_up, gw) = start_with(
        &standin,
        &standin.fragment(),
        "request_timeout = \"1s\"",
        "",
    )
    .await;
    standin.control("delay", json!({ "ms": 2500 })).await;
    let mut b = Browser::new(&gw.base());
    let form = b.get("/.menshen/mobile").await;
    let page = submit(&mut b, "login", &form.csrf(), HOLDER, "push", &[]).await;
    assert_eq!(page.status, 503, "{}", page.body);
    standin.control("delay", json!({ "ms": 0 })).await;

    // A poll that cannot reach MOI keeps the sign-in pending (the app may be slow), and
    // the next one that can completes it.
    assert_eq!(bind(&gw, &standin, HOLDER, "push").await["state"], "done");
    let mut b = Browser::new(&gw.base());
    start_login(&mut b, HOLDER, "push", "/").await;
    let (ticket, _) = last_ticket(&standin).await;
    standin.control("delay", json!({ "ms": 2500 })).await;
    assert_eq!(status(&mut b, "login").await["state"], "pending");
    standin.control("delay", json!({ "ms": 0 })).await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    let answer = outcome(&mut b, "login").await;
    assert_eq!(answer["state"], "done", "{answer}");
    let metrics = scrape_metrics(gw.metrics_port.expect("metrics")).await;
    assert!(
        metrics.contains(
            r#"menshen_logins_total{method="mobile-certificate",result="unavailable"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn aa_accounts_are_refused_and_lockouts_hold() {
    let standin = standin().await;
    let (_up, gw) = start_with(
        &standin,
        &standin.fragment(),
        "",
        "[lockout]\npassword_failures = 3\nip_attempts_per_minute = 0\n",
    )
    .await;

    // AA accounts bind OTP only: no row to bind, no page, no form.
    let mut aa = Browser::new(&gw.base());
    let page = aa.login(AA.0, AA.2, "/").await;
    assert_eq!(page.location(), Some("/.menshen/bind"));
    let choice = aa.get("/.menshen/bind").await;
    assert!(!choice.body.contains("bind-mobile"), "{}", choice.body);
    assert!(
        choice.body.contains(r#"id="mobile-note""#),
        "{}",
        choice.body
    );
    assert_eq!(aa.get("/.menshen/bind/mobile").await.status, 403);
    let csrf = choice.csrf();
    let page = submit(&mut aa, "bind", &csrf, HOLDER, "push", &[]).await;
    assert_eq!(page.status, 403, "{}", page.body);

    // An AA account that somehow holds a binding still cannot sign in with it.
    let aa_id = gw.sql(&format!(
        "SELECT id FROM accounts WHERE login_name = '{}'",
        AA.0
    ));
    gw.sql(&format!(
        "INSERT INTO mobile_bindings (account_id, id_hash, issuer, issuer_key_id, serial, \
         subject_name, id_last4, created_at) VALUES ('{aa_id}', '{}', 'x', 'x', '1', '王小明', \
         '6789', 0)",
        id_hash(HOLDER)
    ));
    let (_, answer) = sign_in(&gw, &standin, HOLDER, "/").await;
    assert_eq!(answer["error"], "aa_not_allowed", "{answer}");
    gw.sql("DELETE FROM mobile_bindings");

    // A staff account suspended after wrong passwords cannot get in by the app either.
    assert_eq!(bind(&gw, &standin, HOLDER, "push").await["state"], "done");
    for _ in 0..3 {
        let mut b = Browser::new(&gw.base());
        b.login(STAFF.0, "wrong-password", "/").await;
    }
    let (_, answer) = sign_in(&gw, &standin, HOLDER, "/").await;
    assert_eq!(answer["error"], "locked", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("暫停使用至"),
        "{answer}"
    );

    // The support desk's reset clears the binding.
    let out = gw.account_cli(&["reset-binding", STAFF.0], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gw.sql("SELECT COUNT(*) FROM mobile_bindings"), "0");
}

#[tokio::test]
async fn cancel_forgets_the_sign_in() {
    let standin = standin().await;
    let (_up, gw) = start(&standin).await;
    assert_eq!(bind(&gw, &standin, HOLDER, "push").await["state"], "done");
    let mut b = Browser::new(&gw.base());
    start_login(&mut b, HOLDER, "push", "/students").await;
    let wait = b.get("/.menshen/mobile/wait?purpose=login").await;
    let page = b
        .post_form(
            "/.menshen/mobile/cancel",
            &[("csrf", &wait.csrf()), ("purpose", "login")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/.menshen/mobile?rd=%2Fstudents"));
    // An approval after the cancel completes nothing.
    let (ticket, _) = last_ticket(&standin).await;
    standin
        .control("approve", json!({ "sp_ticket_id": ticket }))
        .await;
    assert_eq!(status(&mut b, "login").await["state"], "failed");
    assert!(b.session_cookie().is_none());
}
