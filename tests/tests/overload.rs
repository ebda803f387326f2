//! Overload, through the real gateway process: what happens when logins or client connections
//! exceed what the gateway will take. Its limits are set small here so the tests can fill them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use menshen_tests::client::{Browser, scrape_metrics};
use menshen_tests::gateway::{Gateway, Options};
use menshen_tests::upstream::{Seen, Upstream};

const STAFF: (&str, &str, &str) = ("teacher.busy", "staff", "correct-horse-42");

/// More consecutive password failures than this test causes itself, so a suspension at the
/// end could only come from busy answers being counted as failures.
const THRESHOLD: usize = 10;

/// Posts wrong passwords for names that do not exist (each a dummy-hash check, each name new
/// so none is ever suspended) until `stop` is set.
async fn login_storm(base: String, n: usize, stop: Arc<AtomicBool>) {
    let mut b = Browser::new(&base);
    let csrf = b.get("/.menshen/login").await.csrf();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let name = format!("ghost-{n}-{i}");
        b.post_form(
            "/.menshen/login",
            &[
                ("username", &name),
                ("password", "wrong-password"),
                ("csrf", &csrf),
                ("rd", "/"),
            ],
        )
        .await;
    }
}

/// The value of an unlabelled counter, or of the series whose labels are exactly `labels`.
fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name_and_labels} in:\n{text}"))
}

#[tokio::test]
async fn a_saturated_password_pool_sheds_logins_while_signed_in_users_are_proxied() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            // One hashing thread and no queue: the storm below keeps it full.
            login: "argon2_max_concurrent = 1\nargon2_queue = 0\n".into(),
            extra: format!(
                "[lockout]\npassword_failures = {THRESHOLD}\nip_attempts_per_minute = 0\n"
            ),
            metrics: true,
            ..Options::default()
        },
        up.addr,
        &[STAFF],
    )
    .await;
    let mut user = Browser::new(&gw.base());
    let (page, _) = user.sign_in(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303, "{}\n{}", page.body, gw.log());

    let stop = Arc::new(AtomicBool::new(false));
    let storm: Vec<_> = (0..6)
        .map(|n| tokio::spawn(login_storm(gw.base(), n, stop.clone())))
        .collect();

    // Someone tries the staff account's password while the pool is full.
    let mut other = Browser::new(&gw.base());
    let csrf = other.get("/.menshen/login").await.csrf();
    let (mut busy, mut counted) = (0, 0);
    for round in 0.. {
        assert!(round < 1000, "the password pool never filled up");
        if busy >= THRESHOLD {
            break;
        }
        let page = other
            .post_form(
                "/.menshen/login",
                &[
                    ("username", STAFF.0),
                    ("password", "not-the-password"),
                    ("csrf", &csrf),
                    ("rd", "/"),
                ],
            )
            .await;
        match page.status {
            503 => {
                busy += 1;
                assert_eq!(page.header("retry-after"), Some("5"));
                assert!(page.body.contains("系統忙碌中"), "{}", page.body);
                assert!(page.body.contains("請稍候片刻再試一次"), "{}", page.body);
            }
            401 => counted += 1,
            other => panic!("unexpected {other} during the storm:\n{}", page.body),
        }
        // A signed-in user is proxied all the while.
        let page = user
            .request(
                reqwest::Method::GET,
                "/students",
                &[("Accept", "application/json")],
                None,
            )
            .await;
        assert_eq!(page.status, 200, "proxied during the storm: {}", page.body);
        assert_eq!(Seen::parse(&page.body).one("x-menshen-user"), Some(STAFF.0));
    }
    stop.store(true, Ordering::Relaxed);
    for s in storm {
        let _ = s.await;
    }
    assert!(
        counted < THRESHOLD,
        "{counted} wrong passwords were checked"
    );

    // The busy answers were not password failures: with them counted the account would be
    // suspended now, and the right password would get 403.
    let page = other.login(STAFF.0, STAFF.2, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), Some("/.menshen/otp"));

    let metrics = scrape_metrics(gw.metrics_port.unwrap_or_default()).await;
    assert!(metric(&metrics, "menshen_argon2_shed_total") >= busy as u64);
    assert!(
        metric(
            &metrics,
            "menshen_logins_total{method=\"password\",result=\"busy\"}"
        ) >= busy as u64
    );
}
