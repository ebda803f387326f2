//! Builds and runs the Pingora server from a validated [`Config`]: the proxy service on every
//! listener, the metrics listener, the account watch, the session cache's invalidation
//! subscriber, and (for the demo) the demo legacy app.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use menshen_config::Config;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};
use pingora::services::listening::Service;

use crate::accounts::AccountStore;
use crate::clock;
use crate::metrics::{self, MetricsApp};
use crate::proxy::Gateway;
use crate::redis_conn::RedisConn;
use crate::sessions::cache::SessionCache;
use crate::sessions::invalidation;
use crate::sessions::memory::MemoryStore;
use crate::sessions::redis_store::RedisStore;
use crate::sessions::{SessionStore, Sessions};
use crate::state::{ACCOUNT_POLL_SECS, AccountWatch, AppState};
use crate::volatile::Volatile;
use crate::volatile::memory::MemoryVolatile;
use crate::volatile::redis::RedisVolatile;

/// Extra services run beside the gateway (the demo's legacy app).
pub type ExtraService = Box<dyn pingora::services::ServiceWithDependents>;

/// Opens the database once before serving: migrations run here, a bad URL or an unreachable
/// database stops the start with a clear message, and the account watch starts filled.
fn prepare_database(config: &Config, watch: &AccountWatch) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = AccountStore::connect(&config.store.database).await?;
        let (disabled, not_before) = store.session_rules().await?;
        watch.update_rules(disabled, not_before, clock::now_secs());
        store.close().await;
        anyhow::Ok(())
    })
}

/// The session store and the volatile store: both in Redis (one shared connection) when it is
/// configured, else both in this process.
pub fn stores(config: &Config) -> anyhow::Result<(Arc<dyn SessionStore>, Arc<dyn Volatile>)> {
    Ok(stores_on(redis_conn(config)?))
}

/// The Redis connection, when Redis is configured (not connected yet).
fn redis_conn(config: &Config) -> anyhow::Result<Option<Arc<RedisConn>>> {
    config
        .store
        .redis
        .as_ref()
        .map(|url| {
            RedisConn::new(url, &config.store.redis_prefix)
                .map(Arc::new)
                .context("invalid Redis URL")
        })
        .transpose()
}

fn stores_on(redis: Option<Arc<RedisConn>>) -> (Arc<dyn SessionStore>, Arc<dyn Volatile>) {
    match redis {
        Some(conn) => (
            Arc::new(RedisStore::new(conn.clone())),
            Arc::new(RedisVolatile::new(conn)),
        ),
        None => (
            Arc::new(MemoryStore::new()),
            Arc::new(MemoryVolatile::new()),
        ),
    }
}

/// Runs the gateway until it is stopped. Never returns on success.
pub fn run(config: Config, extras: Vec<ExtraService>) -> anyhow::Result<()> {
    metrics::init();
    let watch = Arc::new(AccountWatch::default());
    prepare_database(&config, &watch)?;
    let redis = redis_conn(&config)?;
    let (session_store, volatile) = stores_on(redis.clone());
    let mut sessions = Sessions::new(
        session_store,
        config.session.idle_timeout,
        config.session.absolute_timeout,
    );
    // With Redis, the proxy path reads sessions through a per-instance cache that the
    // invalidation subscriber (added below) keeps exact; the in-process store needs none.
    let cache = redis.as_ref().map(|_| Arc::new(SessionCache::default()));
    if let Some(cache) = &cache {
        sessions = sessions.with_cache(cache.clone());
    }
    let listeners = config.listeners.clone();
    let metrics_addr = config.metrics;
    let threads = config.threads;
    let buffers = L4BufferSettings::default().read(config.connections.read_buffer);
    let database = config.store.database.clone();
    let state = Arc::new(AppState::new(config, sessions, volatile, watch.clone())?);

    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(2),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Gateway {
            state: state.clone(),
        },
        "menshen",
    );
    // Each listener with Menshen's socket read buffer size ([server] read_buffer) instead of
    // Pingora's 64 KiB, which every client connection held for its whole life.
    for l in &listeners {
        let addr = l.address.to_string();
        let endpoint = ListenerConfig::tcp(addr.clone()).l4_buffer(buffers);
        let endpoint = match &l.tls {
            None => endpoint,
            Some(tls) => endpoint.tls(
                TlsSettings::intermediate(
                    &tls.certificate.to_string_lossy(),
                    &tls.key.to_string_lossy(),
                )
                .with_context(|| format!("cannot use the TLS certificate for {addr}"))?,
            ),
        };
        proxy.add_listener(endpoint);
    }
    server.add_service(proxy);

    if let Some(addr) = metrics_addr {
        let mut svc = Service::new("menshen metrics".to_string(), MetricsApp);
        svc.add_tcp(&addr.to_string());
        server.add_service(svc);
    }
    if let Some(certificates) = state.certificates.clone() {
        crate::metrics::watch_crls(&certificates);
        let loaded = certificates.load_at_start();
        server.add_service(background_service(
            "crl refresh",
            crate::certificates::CrlRefresher {
                certificates,
                loaded,
            },
        ));
    }
    server.add_service(background_service(
        "account watch",
        AccountPoller { database, watch },
    ));
    if let (Some(conn), Some(cache)) = (redis, cache) {
        server.add_service(background_service(
            "session cache invalidations",
            invalidation::Subscriber { conn, cache },
        ));
    }
    for extra in extras {
        server.add_boxed_service(extra);
    }
    tracing::info!(
        listeners = ?listeners.iter().map(|l| l.address).collect::<Vec<_>>(),
        "menshen is serving"
    );
    server.run_forever()
}

/// Polls the database for disabled accounts, so their sessions end on every instance, and
/// records when the database last answered (the gateway fails closed when it stops).
struct AccountPoller {
    database: String,
    watch: Arc<AccountWatch>,
}

#[async_trait]
impl BackgroundService for AccountPoller {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut store: Option<AccountStore> = None;
        let mut healthy = true;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(ACCOUNT_POLL_SECS)) => {}
            }
            if store.is_none() {
                store = AccountStore::connect(&self.database).await.ok();
            }
            let result = match &store {
                Some(s) => s.session_rules().await,
                None => Err(anyhow::anyhow!("cannot connect")),
            };
            match result {
                Ok((disabled, not_before)) => {
                    if !healthy {
                        tracing::info!("account database reachable again");
                    }
                    healthy = true;
                    self.watch
                        .update_rules(disabled, not_before, clock::now_secs());
                }
                Err(e) => {
                    if healthy {
                        tracing::error!("account database unreachable: {e:#}");
                    }
                    healthy = false;
                }
            }
        }
    }
}
