//! Overload, through the real gateway process: what happens when logins or client connections
//! exceed what the gateway will take. Its limits are set small here so the tests can fill them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use menshen_tests::client::{Browser, scrape_metrics};
use menshen_tests::eventually;
use menshen_tests::gateway::{Gateway, Options};
use menshen_tests::upstream::{Seen, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any timeout configured below: "it closes" is all that is checked.
const GENEROUS: Duration = Duration::from_secs(30);

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

/// One answer read off a raw connection.
struct Raw {
    status: u16,
    head: String,
    body: String,
}

/// Sends `GET path` on an open keep-alive connection and reads the answer whole (Menshen's own
/// pages always carry Content-Length).
async fn get(stream: &mut TcpStream, path: &str) -> Raw {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read answer");
        assert!(n > 0, "connection closed before an answer");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("content-length");
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("read body");
        assert!(n > 0, "connection closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Raw {
        status,
        head,
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string(),
    }
}

/// Waits (up to [`GENEROUS`]) for the gateway to close `stream`; panics if it stays open.
async fn closed_by_gateway(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(GENEROUS, stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("the gateway sent bytes nobody asked for"),
        Err(_) => panic!("the connection was still open after {GENEROUS:?}"),
    }
}

async fn connect(gw: &Gateway) -> TcpStream {
    TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .expect("connect")
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            extra: "[server]\nkeepalive_timeout = \"2s\"\n".into(),
            ..Options::default()
        },
        up.addr,
        &[],
    )
    .await;
    let mut conn = connect(&gw).await;
    // Two requests on one connection: it is kept alive between them...
    assert_eq!(get(&mut conn, "/.menshen/health").await.status, 200);
    let again = get(&mut conn, "/.menshen/health").await;
    assert_eq!(again.status, 200);
    assert!(
        !again
            .head
            .to_ascii_lowercase()
            .contains("connection: close")
    );
    // ...and closed by the gateway once it has been idle for the timeout.
    closed_by_gateway(&mut conn).await;
}

#[tokio::test]
async fn a_connection_past_the_per_address_cap_gets_503_and_the_others_keep_working() {
    let up = Upstream::start().await;
    let gw = Gateway::start(
        Options {
            extra: "[server]\nmax_connections_per_address = 2\n".into(),
            metrics: true,
            ..Options::default()
        },
        up.addr,
        &[],
    )
    .await;
    let mut first = connect(&gw).await;
    let mut second = connect(&gw).await;
    assert_eq!(get(&mut first, "/.menshen/health").await.status, 200);
    assert_eq!(get(&mut second, "/.menshen/health").await.status, 200);

    let mut third = connect(&gw).await;
    let refused = get(&mut third, "/.menshen/health").await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    let head = refused.head.to_ascii_lowercase();
    assert!(head.contains("retry-after: 5"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(refused.body.contains("系統忙碌中"), "{}", refused.body);
    closed_by_gateway(&mut third).await;

    // The connections within the cap are served as before.
    assert_eq!(get(&mut first, "/.menshen/health").await.status, 200);
    assert_eq!(get(&mut second, "/.menshen/health").await.status, 200);

    // Closing one frees its place for a new connection.
    drop(first);
    eventually(GENEROUS, "a new connection after one closed", || async {
        let mut conn = connect(&gw).await;
        get(&mut conn, "/.menshen/health").await.status == 200
    })
    .await;

    let metrics = scrape_metrics(gw.metrics_port.unwrap_or_default()).await;
    assert!(
        metric(
            &metrics,
            "menshen_connections_refused_total{cap=\"per_address\"}"
        ) >= 1
    );
}
