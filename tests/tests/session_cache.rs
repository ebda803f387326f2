//! The per-instance session cache in front of Redis: a session that ends anywhere is refused
//! everywhere on the very next request, a Redis outage is never papered over by the cache,
//! and the idle timeout still counts use that never reached Redis.
//!
//! Each gateway here has its metrics listener on, to wait until its cache is live (its
//! invalidation subscription confirmed) and to see that requests really were served from it.

use std::time::Duration;

use menshen_tests::backends::PrivateRedis;
use menshen_tests::client::{Browser, scrape_metrics};
use menshen_tests::gateway::{Gateway, Options, Sibling, Store};
use menshen_tests::upstream::Upstream;
use menshen_tests::{eventually, free_port};

const STAFF: (&str, &str, &str) = ("teacher", "staff", "correct-horse-42");

/// One value from the gateway's Prometheus text (`name` with its labels, as printed).
async fn metric(port: u16, name: &str) -> u64 {
    let text = scrape_metrics(port).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

async fn cache_hits(port: u16) -> u64 {
    metric(port, "menshen_session_cache_lookups_total{result=\"hit\"}").await
}

/// Waits until the gateway's cache receives invalidations (it bypasses itself until then).
async fn wait_until_live(port: u16) {
    eventually(
        Duration::from_secs(15),
        "session cache live",
        || async move { metric(port, "menshen_session_cache_live").await == 1 },
    )
    .await;
}

async fn start(opts: Options, up: &Upstream) -> Gateway {
    let gw = Gateway::start(
        Options {
            metrics: true,
            ..opts
        },
        up.addr,
        &[STAFF],
    )
    .await;
    wait_until_live(gw.metrics_port.expect("metrics port")).await;
    gw
}

/// A second instance sharing `gw`'s database and Redis prefix, with a metrics listener of its
/// own (the config on disk is given another metrics port while the sibling starts from it).
async fn sibling(gw: &Gateway) -> (Sibling, u16) {
    let original = std::fs::read_to_string(&gw.config_path).expect("config");
    let ours = gw.metrics_port.expect("metrics port");
    let port = free_port();
    std::fs::write(
        &gw.config_path,
        original.replace(
            &format!("address = \"127.0.0.1:{ours}\""),
            &format!("address = \"127.0.0.1:{port}\""),
        ),
    )
    .expect("write config");
    let sibling = gw.sibling().await;
    std::fs::write(&gw.config_path, original).expect("restore config");
    wait_until_live(port).await;
    (sibling, port)
}

/// A browser on `base` with `signed_in`'s cookies.
fn same_cookies(base: &str, signed_in: &Browser) -> Browser {
    let mut b = Browser::new(base);
    b.cookies = signed_in.cookies.clone();
    b
}

/// Uses the session a few times on one instance and checks it came from that instance's cache.
async fn use_from_cache(b: &mut Browser, metrics_port: u16) {
    let before = cache_hits(metrics_port).await;
    for _ in 0..5 {
        let page = b.get("/x").await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    assert!(
        cache_hits(metrics_port).await > before,
        "the session was served from the cache"
    );
}

/// Two instances sharing Redis and the database, and one signed-in session (the same cookies
/// in two browsers) that each instance has served from its cache.
struct Pair {
    a: Gateway,
    b: Sibling,
    on_a: Browser,
    on_b: Browser,
}

async fn signed_in_on_two_instances(up: &Upstream) -> Pair {
    let a = start(
        Options {
            store: Store::SharedRedis,
            ..Options::default()
        },
        up,
    )
    .await;
    let (b, b_metrics) = sibling(&a).await;
    let mut on_a = Browser::new(&a.base());
    assert_eq!(on_a.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    let mut on_b = same_cookies(&b.base(), &on_a);
    use_from_cache(&mut on_a, a.metrics_port.expect("metrics port")).await;
    use_from_cache(&mut on_b, b_metrics).await;
    Pair { a, b, on_a, on_b }
}

#[tokio::test]
async fn logout_on_one_instance_is_refused_on_the_other_within_the_cache_bound() {
    let up = Upstream::start().await;
    let Pair {
        a: _a,
        b: _b,
        mut on_a,
        mut on_b,
    } = signed_in_on_two_instances(&up).await;

    let home = on_a.get("/.menshen/").await;
    let out = on_a
        .post_form("/.menshen/logout", &[("csrf", &home.csrf())])
        .await;
    assert_eq!(out.status, 303);
    // The invalidation reaches B over pub/sub while the browser makes its next request; on a
    // loaded machine B's subscriber may be scheduled a moment after that request, so B gets
    // the cache's own bound (1 s) to refuse it, never longer.
    eventually(
        Duration::from_millis(1500),
        "B refuses the ended session",
        || {
            let mut on_b = on_b.clone();
            async move { on_b.get("/x").await.status == 302 }
        },
    )
    .await;
    let hits = up.hits();
    // And the refusal stays: nothing put the session back into B's cache.
    assert_eq!(on_b.get("/x").await.status, 302);
    assert_eq!(up.hits(), hits);
}

#[tokio::test]
async fn reset_binding_ends_the_session_on_every_instance_at_once() {
    let up = Upstream::start().await;
    // `_b` (not `_`) keeps the second instance running to the end of the test.
    let Pair {
        a,
        b: _b,
        mut on_a,
        mut on_b,
    } = signed_in_on_two_instances(&up).await;

    let out = a.account_cli(&["reset-binding", STAFF.0], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hits = up.hits();
    assert_eq!(on_a.get("/x").await.status, 302, "A still served it");
    assert_eq!(on_b.get("/x").await.status, 302, "B still served it");
    assert_eq!(up.hits(), hits);
}

#[tokio::test]
async fn a_disabled_account_is_refused_on_every_instance_though_cached() {
    let up = Upstream::start().await;
    let Pair { a, b, on_a, .. } = signed_in_on_two_instances(&up).await;

    let out = a.account_cli(&["disable", STAFF.0], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `disable` writes only the database; each instance learns it from its account poll, and
    // then applies it to cached sessions as to any other.
    for base in [a.base(), b.base()] {
        eventually(Duration::from_secs(15), "disabled session refused", || {
            let mut browser = same_cookies(&base, &on_a);
            async move { browser.get("/x").await.status == 302 }
        })
        .await;
    }
}

/// A gateway on the Redis at `redis_url`, its metrics port, and a signed-in browser whose
/// session it has served from its cache.
async fn signed_in_on(up: &Upstream, redis_url: String) -> (Gateway, u16, Browser) {
    let gw = start(
        Options {
            store: Store::RedisUrl(redis_url),
            ..Options::default()
        },
        up,
    )
    .await;
    let metrics_port = gw.metrics_port.expect("metrics port");
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    use_from_cache(&mut b, metrics_port).await;
    (gw, metrics_port, b)
}

#[tokio::test]
async fn redis_stopped_while_a_session_is_cached_fails_closed_and_recovers() {
    let up = Upstream::start().await;
    let mut redis = PrivateRedis::start_persistent();
    let (gw, metrics_port, mut b) = signed_in_on(&up, redis.url()).await;

    redis.stop();
    // The closed subscription connection turns the cache off (in the background, as soon as
    // the gateway reads the connection's end); from then on nothing is served from it.
    eventually(Duration::from_secs(5), "session cache off", || async move {
        metric(metrics_port, "menshen_session_cache_live").await == 0
    })
    .await;
    let hits = up.hits();
    let page = b.get("/x").await;
    assert_eq!(page.status, 503, "served from the cache with Redis down");
    assert_eq!(b.get("/x").await.status, 503);
    assert_eq!(
        up.hits(),
        hits,
        "nothing reached the app while Redis was down"
    );

    // Back with its data: the session still exists, so it works again.
    redis.restart();
    eventually(Duration::from_secs(15), "the session works again", || {
        let mut again = same_cookies(&gw.base(), &b);
        async move { again.get("/x").await.status == 200 }
    })
    .await;
    wait_until_live(metrics_port).await;
    use_from_cache(&mut b, metrics_port).await;
}

#[tokio::test]
async fn a_silent_redis_is_noticed_within_the_cache_age() {
    let up = Upstream::start().await;
    let redis = PrivateRedis::start();
    let (gw, metrics_port, mut b) = signed_in_on(&up, redis.url()).await;

    // A frozen Redis closes no connection: nothing tells the gateway. Past the cache's age
    // limit (one second) every request must ask Redis again, and get no answer.
    redis.pause();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = up.hits();
    let page = b.get("/x").await;
    assert_eq!(page.status, 503, "served from the cache with Redis silent");
    assert_eq!(b.get("/x").await.status, 503);
    assert_eq!(up.hits(), hits);

    redis.resume();
    eventually(Duration::from_secs(15), "the session works again", || {
        let mut again = same_cookies(&gw.base(), &b);
        async move { again.get("/x").await.status == 200 }
    })
    .await;
    wait_until_live(metrics_port).await;
    use_from_cache(&mut b, metrics_port).await;
}

#[tokio::test]
async fn the_idle_timeout_counts_use_served_from_the_cache() {
    let up = Upstream::start().await;
    let gw = start(
        Options {
            store: Store::SharedRedis,
            idle: "3s".into(),
            absolute: "1h".into(),
            ..Options::default()
        },
        &up,
    )
    .await;
    let metrics_port = gw.metrics_port.expect("metrics port");
    let mut b = Browser::new(&gw.base());
    assert_eq!(b.sign_in(STAFF.0, STAFF.2, "/").await.0.status, 303);
    let before = cache_hits(metrics_port).await;
    // Used for twice the idle timeout, mostly from the cache: the use keeps it alive.
    for _ in 0..20 {
        assert_eq!(b.get("/x").await.status, 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(cache_hits(metrics_port).await > before);
    // Left alone for longer than the idle timeout: it ends.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(b.get("/x").await.status, 302);
}
