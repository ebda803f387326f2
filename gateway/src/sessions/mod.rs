//! Server-side sessions: what a browser's session cookie stands for.
//!
//! The cookie carries only an opaque 256-bit id; everything else lives in a [`SessionStore`]
//! (Redis when configured, else in-process). Stores key sessions by the SHA-256 of the id, so
//! a copy of the store does not yield usable cookies. [`Sessions`] applies the timeouts: an
//! idle timeout (refreshed as the user works) and an absolute one (from login, never extended).

pub mod memory;
pub mod redis_store;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::random;

/// A factor a user has proven in this session. Later login methods add variants; the session
/// records which are done, so a flow can ask for exactly what is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Password,
    Otp,
    Certificate,
    Oidc,
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
    /// Where to go once the login is complete (a validated local path).
    #[serde(default)]
    pub return_to: Option<String>,
}

impl SessionData {
    pub fn is_authenticated(&self) -> bool {
        self.stage == Stage::Authenticated
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
}

/// Store key for a session id: the id itself never reaches the store.
pub fn store_key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// The session rules over a store.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    idle: Duration,
    absolute: Duration,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, idle: Duration, absolute: Duration) -> Self {
        Sessions {
            store,
            idle,
            absolute,
        }
    }

    /// How long before `last_seen` is written again: refreshing on every request would make
    /// each proxied request a store write; a small fraction of the idle timeout is enough.
    fn refresh_after(&self) -> u64 {
        (self.idle.as_secs() / 10).clamp(1, 60)
    }

    /// Stores `data` under a brand-new id and returns the id (a new id at every login step
    /// defeats session fixation).
    pub async fn create(&self, data: &SessionData, now: u64) -> Result<String, StoreError> {
        let id = random::token();
        self.store
            .put(&store_key(&id), data, self.ttl(data, now))
            .await?;
        Ok(id)
    }

    /// Replaces the data of an existing session (same id).
    pub async fn update(&self, id: &str, data: &SessionData, now: u64) -> Result<(), StoreError> {
        self.store
            .put(&store_key(id), data, self.ttl(data, now))
            .await
    }

    fn ttl(&self, data: &SessionData, now: u64) -> Duration {
        let age = now.saturating_sub(data.created_at);
        let left = self.absolute.as_secs().saturating_sub(age);
        Duration::from_secs(left.min(self.idle.as_secs()).max(1))
    }

    /// The live session for `id`, or `None` when unknown or timed out.
    pub async fn load(&self, id: &str, now: u64) -> Result<Option<SessionData>, StoreError> {
        let key = store_key(id);
        let Some(mut data) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let idle_for = now.saturating_sub(data.last_seen);
        let age = now.saturating_sub(data.created_at);
        if idle_for >= self.idle.as_secs() || age >= self.absolute.as_secs() {
            self.store.delete(&key).await?;
            return Ok(None);
        }
        if idle_for >= self.refresh_after() {
            data.last_seen = now;
            self.store
                .refresh(&key, &data, self.ttl(&data, now))
                .await?;
        }
        Ok(Some(data))
    }

    pub async fn destroy(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete(&store_key(id)).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    pub async fn destroy_account(&self, account_id: &str) -> Result<(), StoreError> {
        self.store.delete_account(account_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(now: u64) -> SessionData {
        SessionData {
            account_id: "a1".into(),
            login_name: "t".into(),
            display_name: "T".into(),
            school_code: "s".into(),
            roles: vec!["staff".into()],
            factors: vec![Factor::Password],
            stage: Stage::Authenticated,
            auth_method: "password".into(),
            csrf: random::token(),
            created_at: now,
            last_seen: now,
            return_to: None,
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
}
