//! Server-side sessions: what a browser's session cookie stands for.
//!
//! The cookie carries only an opaque 256-bit id; everything else lives in a [`SessionStore`]
//! (Redis when configured, else in-process). Stores key sessions by the SHA-256 of the id, so
//! a copy of the store does not yield usable cookies. [`Sessions`] applies the timeouts: an
//! idle timeout (refreshed as the user works) and an absolute one (from login, never extended).
//!
//! With Redis, the proxy path reads through a short-lived per-instance [`cache`], kept exact
//! by [`invalidation`] messages that every ending or changing write publishes.

pub mod cache;
pub mod invalidation;
pub mod memory;
pub mod redis_store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::random;
use cache::{Key, Lookup, SessionCache};

/// A factor a user has proven in this session. Later login methods add variants; the session
/// records which are done, so a flow can ask for exactly what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Password,
    Otp,
    Certificate,
    Oidc,
    /// The mobile citizen certificate (行動自然人憑證), approved in the app.
    MobileCertificate,
}

/// How far this session has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Fully authenticated: may reach the protected sites.
    Authenticated,
    /// A first factor is done and a second one is still owed.
    NeedsSecondFactor,
    /// The account has no second factor bound and may reach only the binding pages.
    MustBind,
}

/// Everything the gateway knows about a signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    pub account_id: String,
    pub login_name: String,
    pub display_name: String,
    pub school_code: String,
    pub roles: Vec<String>,
    pub factors: Vec<Factor>,
    pub stage: Stage,
    /// Sent upstream in the auth-method header: `password`, `password+otp`, `certificate`, ...
    pub auth_method: String,
    /// CSRF token for this session's state-changing forms (logout, settings).
    pub csrf: String,
    pub created_at: u64,
    pub last_seen: u64,
    /// Where to go once the login is complete: a validated local path, or with single
    /// sign-on an absolute URL to one of the gateway's hosts.
    #[serde(default)]
    pub return_to: Option<String>,
    /// Single sign-on: for a site's session made by a hand-off, the store key (hashed id) of
    /// the portal session it belongs to. The site session lives only as long as that one:
    /// ending the portal session (logout anywhere) ends it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal: Option<String>,
    /// Single sign-on: the site host a hand-off made this session for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Where the sign-in came from, for the person's list of active sign-ins.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_ip: String,
    /// The browser at sign-in, summarised ("Chrome 140 · Windows"): enough to tell devices
    /// apart in the list, small enough not to grow every session record.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
}

impl SessionData {
    pub fn is_authenticated(&self) -> bool {
        self.stage == Stage::Authenticated
    }

    /// A complete password session of `account_id` made at `now`, for tests to adjust with
    /// struct-update syntax (one place to extend when a field is added).
    #[cfg(test)]
    pub(crate) fn sample(account_id: &str, now: u64) -> SessionData {
        SessionData {
            account_id: account_id.into(),
            login_name: "t".into(),
            display_name: "T".into(),
            school_code: "s".into(),
            roles: vec!["staff".into()],
            factors: vec![Factor::Password],
            stage: Stage::Authenticated,
            auth_method: "password".into(),
            csrf: "c".into(),
            created_at: now,
            last_seen: now,
            return_to: None,
            portal: None,
            site: None,
            client_ip: String::new(),
            device: String::new(),
        }
    }
}

/// The store could not be reached or answered nonsense: callers fail closed (503).
#[derive(Debug, thiserror::Error)]
#[error("session store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where sessions are kept. `key` is already the hashed id.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<SessionData>, StoreError>;
    async fn put(&self, key: &str, data: &SessionData, ttl: Duration) -> Result<(), StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Ends every session of one account (account disabled, password reset, binding changed).
    async fn delete_account(&self, account_id: &str) -> Result<(), StoreError>;
    /// Rewrites a session only if it still exists (refreshing its idle time must never bring
    /// back a session that was ended meanwhile).
    async fn refresh(&self, key: &str, data: &SessionData, ttl: Duration)
    -> Result<(), StoreError>;
    /// Answers when the store is reachable (health checks).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Every stored session of one account, with its key (the person's list of sign-ins).
    async fn of_account(&self, account_id: &str) -> Result<Vec<(String, SessionData)>, StoreError>;
}

/// The hashed id a session is stored under (the id itself never reaches the store).
pub fn key_of(id: &str) -> Key {
    Sha256::digest(id.as_bytes()).into()
}

/// The key a [`store_key`] spells, when it is one.
pub fn key_from_hex(hex_key: &str) -> Option<Key> {
    let mut key: Key = [0; 32];
    hex::decode_to_slice(hex_key, &mut key).ok()?;
    Some(key)
}

/// Store key for a session id: the id itself never reaches the store.
pub fn store_key(id: &str) -> String {
    hex::encode(key_of(id))
}

/// The two session timeouts, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: u64,
    pub absolute: u64,
}

/// Whether a session may still be used at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Idle too long or past its absolute timeout.
    Ended,
    /// Alive; `refresh_due` when `last_seen` should be written again.
    Live { refresh_due: bool },
}

impl Timeouts {
    /// How long before `last_seen` is written again: refreshing on every request would make
    /// each proxied request a store write; a small fraction of the idle timeout is enough.
    fn refresh_after(&self) -> u64 {
        (self.idle / 10).clamp(1, 60)
    }

    pub fn liveness(&self, created_at: u64, last_seen: u64, now: u64) -> Liveness {
        let idle_for = now.saturating_sub(last_seen);
        let age = now.saturating_sub(created_at);
        if idle_for >= self.idle || age >= self.absolute {
            Liveness::Ended
        } else {
            Liveness::Live {
                refresh_due: idle_for >= self.refresh_after(),
            }
        }
    }

    /// How long the store keeps a session written at `now`: the idle timeout, cut at the
    /// absolute one (which is never extended).
    fn ttl(&self, created_at: u64, now: u64) -> Duration {
        let age = now.saturating_sub(created_at);
        let left = self.absolute.saturating_sub(age);
        Duration::from_secs(left.min(self.idle).max(1))
    }
}

/// The session rules over a store, with an optional read-through cache for the proxy path.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    timeouts: Timeouts,
    /// Only with a shared (Redis) store, and only when its invalidation subscriber runs.
    cache: Option<Arc<SessionCache>>,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, idle: Duration, absolute: Duration) -> Self {
        Sessions {
            store,
            timeouts: Timeouts {
                idle: idle.as_secs(),
                absolute: absolute.as_secs(),
            },
            cache: None,
        }
    }

    /// Serves [`Sessions::load_shared`] through `cache`. Whoever calls this must also run the
    /// invalidation subscriber for it ([`invalidation::Subscriber`]); until that subscriber
    /// is live the cache is bypassed.
    pub fn with_cache(mut self, cache: Arc<SessionCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// A store error means Redis cannot be trusted to have told us everything: the cache is
    /// emptied so nothing is served from it that Redis could not confirm.
    fn checked<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err()
            && let Some(cache) = &self.cache
        {
            cache.flush();
        }
        result
    }

    /// Stores `data` under a brand-new id and returns the id (a new id at every login step
    /// defeats session fixation).
    pub async fn create(&self, data: &SessionData, now: u64) -> Result<String, StoreError> {
        let id = random::token();
        let r = self
            .store
            .put(&store_key(&id), data, self.ttl(data, now))
            .await;
        self.checked(r)?;
        Ok(id)
    }

    /// Replaces the data of an existing session (same id). The store tells every instance.
    /// A refresh of the old data already under way (here or on another instance, at most one
    /// cache age old) can still overwrite it, as a read-then-refresh always could: the login
    /// flows never change a session in place, they give it a new id.
    pub async fn update(&self, id: &str, data: &SessionData, now: u64) -> Result<(), StoreError> {
        let key = key_of(id);
        let r = self
            .store
            .put(&hex::encode(key), data, self.ttl(data, now))
            .await;
        self.evict(&key);
        self.checked(r)
    }

    fn ttl(&self, data: &SessionData, now: u64) -> Duration {
        self.timeouts.ttl(data.created_at, now)
    }

    fn evict(&self, key: &Key) {
        if let Some(cache) = &self.cache {
            cache.evict(key);
        }
    }

    /// The live session for `id`, or `None` when unknown or timed out, read from the store
    /// (the login flows' view: always current).
    pub async fn load(&self, id: &str, now: u64) -> Result<Option<SessionData>, StoreError> {
        self.load_key(&key_of(id), now).await
    }

    /// The live session stored under `key`. A site session made by a single sign-on hand-off
    /// is live only while its portal session is: that one read (which also keeps the portal
    /// session from idling out while the person works on the sites) is what makes a logout
    /// anywhere end every linked site session, on every instance.
    async fn load_key(&self, key: &Key, now: u64) -> Result<Option<SessionData>, StoreError> {
        let Some(data) = self.load_one(key, now).await? else {
            return Ok(None);
        };
        let Some(portal) = &data.portal else {
            return Ok(Some(data));
        };
        let portal_alive = match key_from_hex(portal) {
            Some(portal_key) => self
                .load_one(&portal_key, now)
                .await?
                .is_some_and(|p| p.is_authenticated() && p.account_id == data.account_id),
            None => false,
        };
        if portal_alive {
            return Ok(Some(data));
        }
        let r = self.store.delete(&hex::encode(key)).await;
        self.evict(key);
        self.checked(r)?;
        Ok(None)
    }

    /// The live session stored under `key`, links not followed.
    async fn load_one(&self, key: &Key, now: u64) -> Result<Option<SessionData>, StoreError> {
        let hex_key = hex::encode(key);
        let Some(mut data) = self.checked(self.store.get(&hex_key).await)? else {
            return Ok(None);
        };
        match self.timeouts.liveness(data.created_at, data.last_seen, now) {
            Liveness::Ended => {
                let r = self.store.delete(&hex_key).await;
                self.evict(key);
                self.checked(r)?;
                Ok(None)
            }
            Liveness::Live { refresh_due } => {
                if refresh_due {
                    data.last_seen = now;
                    let r = self
                        .store
                        .refresh(&hex_key, &data, self.ttl(&data, now))
                        .await;
                    self.checked(r)?;
                }
                Ok(Some(data))
            }
        }
    }

    /// The live session for `id` on the proxy path: from the cache when it holds a fresh copy
    /// (its `last_seen` then written behind, off the request, at most once per refresh
    /// interval), else as [`Sessions::load`], the answer then kept for a moment.
    pub async fn load_shared(
        &self,
        id: &str,
        now: u64,
    ) -> Result<Option<Arc<SessionData>>, StoreError> {
        let key = key_of(id);
        let Some(cache) = &self.cache else {
            return Ok(self.load_key(&key, now).await?.map(Arc::new));
        };
        match cache.lookup(&key, Instant::now(), now, self.timeouts) {
            Lookup::Hit { data, refresh } => {
                if let Some(last_seen) = refresh {
                    self.write_behind(key, &data, last_seen);
                }
                Ok(Some(data))
            }
            Lookup::Miss(ticket) => {
                let data = self.load_key(&key, now).await?.map(Arc::new);
                if let (Some(data), Some(ticket)) = (&data, ticket) {
                    cache.fill(key, data.clone(), ticket);
                }
                Ok(data)
            }
        }
    }

    /// Extends a cached session in the store without holding up the request. The store's
    /// `refresh` only rewrites a session that still exists, so a session ended meanwhile stays
    /// ended; a failure empties the cache (Redis is in doubt).
    fn write_behind(&self, key: Key, data: &SessionData, last_seen: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to run it on: drop the entry, so the next request refreshes inline.
            self.evict(&key);
            return;
        };
        let mut fresh = data.clone();
        fresh.last_seen = last_seen;
        let ttl = self.ttl(&fresh, last_seen);
        let store = self.store.clone();
        let cache = self.cache.clone();
        runtime.spawn(async move {
            if let Err(e) = store.refresh(&hex::encode(key), &fresh, ttl).await {
                tracing::warn!("session refresh: {e}");
                if let Some(cache) = cache {
                    cache.flush();
                }
            }
        });
    }

    /// The live session whose store key is `key_hex` (single sign-on hand-offs name the portal
    /// session by its key, never by its id).
    pub async fn load_by_key(
        &self,
        key_hex: &str,
        now: u64,
    ) -> Result<Option<SessionData>, StoreError> {
        match key_from_hex(key_hex) {
            Some(key) => self.load_key(&key, now).await,
            None => Ok(None),
        }
    }

    /// Ends a sign-in: the session `id` and, for a site session made by a hand-off, the portal
    /// session it belongs to, which ends every other site session linked to it (see
    /// [`Sessions::load_key`]).
    pub async fn destroy_sign_in(&self, id: &str, data: &SessionData) -> Result<(), StoreError> {
        if let Some(portal) = data.portal.as_deref().and_then(key_from_hex) {
            let r = self.store.delete(&hex::encode(portal)).await;
            self.evict(&portal);
            self.checked(r)?;
        }
        self.destroy(id).await
    }

    /// The live sessions of one account, with their store keys (see [`store_key`]).
    pub async fn of_account(
        &self,
        account_id: &str,
        now: u64,
    ) -> Result<Vec<(String, SessionData)>, StoreError> {
        let stored = self.checked(self.store.of_account(account_id).await)?;
        Ok(stored
            .into_iter()
            .filter(|(_, d)| {
                d.account_id == account_id
                    && matches!(
                        self.timeouts.liveness(d.created_at, d.last_seen, now),
                        Liveness::Live { .. }
                    )
            })
            .collect())
    }

    /// Ends the session stored under `key_hex` (a sign-in ended from the list of sign-ins);
    /// site sessions linked to it end with it.
    pub async fn destroy_key(&self, key_hex: &str) -> Result<(), StoreError> {
        let Some(key) = key_from_hex(key_hex) else {
            return Ok(());
        };
        let r = self.store.delete(key_hex).await;
        self.evict(&key);
        self.checked(r)
    }

    /// Ends one session, here and (through the store's invalidation) on every instance.
    pub async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        let key = key_of(id);
        let r = self.store.delete(&hex::encode(key)).await;
        self.evict(&key);
        self.checked(r)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let r = self.store.ping().await;
        self.checked(r)
    }

    /// Ends every session of one account, here and on every instance.
    pub async fn destroy_account(&self, account_id: &str) -> Result<(), StoreError> {
        let r = self.store.delete_account(account_id).await;
        if let Some(cache) = &self.cache {
            cache.evict_account(account_id);
        }
        self.checked(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(now: u64) -> SessionData {
        SessionData {
            csrf: random::token(),
            ..SessionData::sample("a1", now)
        }
    }

    fn sessions() -> Sessions {
        let store = Arc::new(memory::MemoryStore::new());
        Sessions::new(store, Duration::from_secs(100), Duration::from_secs(1000))
    }

    #[tokio::test]
    async fn idle_timeout_ends_an_unused_session_and_use_extends_it() {
        let s = sessions();
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(s.load(&id, 50).await.ok().flatten().is_some());
        // Used at 50, so still alive at 140 (idle 90 < 100).
        assert!(s.load(&id, 140).await.ok().flatten().is_some());
        assert!(s.load(&id, 240).await.ok().flatten().is_none());
    }

    #[tokio::test]
    async fn absolute_timeout_is_never_extended() {
        let s = sessions();
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        for t in (60..1000).step_by(60) {
            assert!(
                s.load(&id, t).await.ok().flatten().is_some(),
                "alive at {t}"
            );
        }
        assert!(s.load(&id, 1000).await.ok().flatten().is_none());
    }

    #[tokio::test]
    async fn destroy_account_ends_all_its_sessions() {
        let s = sessions();
        let a = s.create(&data(0), 0).await.unwrap_or_default();
        let b = s.create(&data(0), 0).await.unwrap_or_default();
        assert_ne!(a, b);
        assert!(s.destroy_account("a1").await.is_ok());
        assert!(s.load(&a, 1).await.ok().flatten().is_none());
        assert!(s.load(&b, 1).await.ok().flatten().is_none());
    }

    /// A site session made from `portal_id`'s session, as a hand-off makes it.
    async fn linked(s: &Sessions, portal_id: &str, now: u64) -> String {
        let mut site = data(now);
        site.portal = Some(store_key(portal_id));
        s.create(&site, now).await.unwrap_or_default()
    }

    #[tokio::test]
    async fn a_site_session_lives_only_as_long_as_its_portal_session() {
        let s = sessions();
        let portal = s.create(&data(0), 0).await.unwrap_or_default();
        let registry = linked(&s, &portal, 0).await;
        let hr = linked(&s, &portal, 0).await;
        assert!(s.load(&registry, 1).await.ok().flatten().is_some());
        // Work on a site keeps the portal session from idling out (idle timeout 100).
        for t in (60..400).step_by(60) {
            assert!(
                s.load(&registry, t).await.ok().flatten().is_some(),
                "at {t}"
            );
            assert!(s.load(&hr, t).await.ok().flatten().is_some(), "at {t}");
        }
        assert!(s.load(&portal, 400).await.ok().flatten().is_some());
        // Logging out on one site ends the portal session and with it the other site.
        let site_data = s.load(&hr, 400).await.ok().flatten();
        let site_data = site_data.unwrap_or_else(|| panic!("hr is still signed in"));
        assert!(site_data.portal.is_some());
        assert!(s.destroy_sign_in(&hr, &site_data).await.is_ok());
        assert!(s.load(&portal, 401).await.ok().flatten().is_none());
        assert!(s.load(&hr, 401).await.ok().flatten().is_none());
        assert!(s.load(&registry, 401).await.ok().flatten().is_none());
    }

    #[tokio::test]
    async fn a_link_to_a_missing_or_unfinished_portal_session_is_no_session() {
        let s = sessions();
        let mut half = data(0);
        half.stage = Stage::NeedsSecondFactor;
        let half_done = s.create(&half, 0).await.unwrap_or_default();
        let site = linked(&s, &half_done, 0).await;
        assert!(s.load(&site, 1).await.ok().flatten().is_none());
        let mut orphan = data(0);
        orphan.portal = Some("not-a-key".into());
        let orphan = s.create(&orphan, 0).await.unwrap_or_default();
        assert!(s.load(&orphan, 1).await.ok().flatten().is_none());
        // Someone else's portal session does not carry this account's site session.
        let mut other = data(0);
        other.account_id = "a2".into();
        let other = s.create(&other, 0).await.unwrap_or_default();
        let stolen = linked(&s, &other, 0).await;
        assert!(s.load(&stolen, 1).await.ok().flatten().is_none());
    }

    /// The in-process store, with a switch that makes every call fail as a dead Redis would.
    #[derive(Default)]
    struct Flaky {
        inner: memory::MemoryStore,
        down: std::sync::atomic::AtomicBool,
    }

    impl Flaky {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                Err(StoreError("down".into()))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait]
    impl SessionStore for Flaky {
        async fn get(&self, key: &str) -> Result<Option<SessionData>, StoreError> {
            self.check()?;
            self.inner.get(key).await
        }
        async fn put(&self, key: &str, d: &SessionData, ttl: Duration) -> Result<(), StoreError> {
            self.check()?;
            self.inner.put(key, d, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.check()?;
            self.inner.delete(key).await
        }
        async fn delete_account(&self, account_id: &str) -> Result<(), StoreError> {
            self.check()?;
            self.inner.delete_account(account_id).await
        }
        async fn refresh(
            &self,
            key: &str,
            d: &SessionData,
            ttl: Duration,
        ) -> Result<(), StoreError> {
            self.check()?;
            self.inner.refresh(key, d, ttl).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.check()
        }
        async fn of_account(&self, a: &str) -> Result<Vec<(String, SessionData)>, StoreError> {
            self.check()?;
            self.inner.of_account(a).await
        }
    }

    fn cached() -> (Sessions, Arc<Flaky>, Arc<SessionCache>) {
        let store = Arc::new(Flaky::default());
        let cache = Arc::new(SessionCache::default());
        cache.set_live(true);
        let s = Sessions::new(
            store.clone(),
            Duration::from_secs(100),
            Duration::from_secs(1000),
        )
        .with_cache(cache.clone());
        (s, store, cache)
    }

    async fn shared(s: &Sessions, id: &str, now: u64) -> Option<Arc<SessionData>> {
        s.load_shared(id, now).await.ok().flatten()
    }

    /// Lets spawned write-behind refreshes run (the test runtime has one thread).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn the_cache_serves_and_local_writes_evict() {
        let (s, store, cache) = cached();
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(shared(&s, &id, 1).await.is_some());
        assert_eq!(cache.len(), 1);
        // Served from memory: the store being down is not even noticed (within the max age).
        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(shared(&s, &id, 1).await.is_some());
        store.down.store(false, std::sync::atomic::Ordering::SeqCst);
        assert!(s.destroy(&id).await.is_ok());
        assert!(cache.is_empty());
        assert!(shared(&s, &id, 1).await.is_none());

        let a = s.create(&data(0), 0).await.unwrap_or_default();
        let b = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(shared(&s, &a, 1).await.is_some());
        assert!(shared(&s, &b, 1).await.is_some());
        assert!(s.destroy_account("a1").await.is_ok());
        assert!(cache.is_empty());
        assert!(shared(&s, &a, 1).await.is_none());
    }

    #[tokio::test]
    async fn a_store_error_empties_the_cache() {
        let (s, store, cache) = cached();
        let a = s.create(&data(0), 0).await.unwrap_or_default();
        let b = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(shared(&s, &a, 1).await.is_some());
        store.down.store(true, std::sync::atomic::Ordering::SeqCst);
        // `b` is not cached: its read fails, and `a` is no longer served either.
        assert!(s.load_shared(&b, 1).await.is_err());
        assert!(cache.is_empty());
        assert!(s.load_shared(&a, 1).await.is_err());
    }

    #[tokio::test]
    async fn a_cached_session_is_extended_behind_the_request() {
        let (s, _store, _cache) = cached();
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(shared(&s, &id, 0).await.is_some());
        // Idle 100 s, refresh every 10 s: the hit at 10 writes last_seen = 10 to the store.
        assert!(shared(&s, &id, 10).await.is_some());
        settle().await;
        let stored = s.load(&id, 10).await.ok().flatten().map(|d| d.last_seen);
        assert_eq!(stored, Some(10));
    }

    #[tokio::test]
    async fn a_write_behind_never_brings_back_an_ended_session() {
        let (s, _store, _cache) = cached();
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(shared(&s, &id, 0).await.is_some());
        // The hit claims a refresh; the session ends before the refresh runs.
        assert!(shared(&s, &id, 10).await.is_some());
        assert!(s.destroy(&id).await.is_ok());
        settle().await;
        assert!(s.load(&id, 10).await.ok().flatten().is_none());
    }

    #[tokio::test]
    async fn idle_and_absolute_timeouts_hold_through_the_cache() {
        let (s, _store, _cache) = cached();
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        for t in (5..1000).step_by(5) {
            assert!(shared(&s, &id, t).await.is_some(), "alive at {t}");
            settle().await;
        }
        assert!(shared(&s, &id, 1000).await.is_none());
        let id = s.create(&data(0), 0).await.unwrap_or_default();
        assert!(shared(&s, &id, 1).await.is_some());
        assert!(shared(&s, &id, 101).await.is_none());
    }
}
