//! Redis session store: sessions shared by every gateway instance.
//!
//! Each session is one string key (`{prefix}s:{hash}`) holding JSON with a TTL; each account
//! has a set (`{prefix}as:{account}`) of its session keys so all of them can be ended at once.
//! Every write that ends or changes a session also publishes an invalidation on
//! `{prefix}session-events`, in the same transaction ([`super::invalidation`]), so no instance
//! keeps serving it from its cache. The connection is shared with the volatile store
//! ([`crate::redis_conn`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::invalidation::{self, account_message, session_message};
use super::{SessionData, SessionStore, StoreError};
use crate::redis_conn::{RedisConn, store_err};

pub struct RedisStore {
    conn: Arc<RedisConn>,
}

impl RedisStore {
    pub fn new(conn: Arc<RedisConn>) -> Self {
        RedisStore { conn }
    }

    async fn connection(&self) -> Result<redis::aio::ConnectionManager, StoreError> {
        self.conn.get().await
    }

    fn session_key(&self, key: &str) -> String {
        self.conn.key(&format!("s:{key}"))
    }

    fn account_key(&self, account_id: &str) -> String {
        self.conn.key(&format!("as:{account_id}"))
    }

    fn channel(&self) -> String {
        self.conn.key(invalidation::CHANNEL)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<SessionData>, StoreError> {
        let mut conn = self.connection().await?;
        let raw: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.session_key(key))
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        match raw {
            None => Ok(None),
            // A record this version cannot read is treated as no session (the user logs in
            // again) rather than as an outage.
            Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        }
    }

    async fn put(&self, key: &str, data: &SessionData, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let json = serde_json::to_vec(data).map_err(|e| StoreError(e.to_string()))?;
        let account_key = self.account_key(&data.account_id);
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.session_key(key))
            .arg(json)
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .ignore()
            .cmd("SADD")
            .arg(&account_key)
            .arg(key)
            .ignore()
            // The index outlives any one session by at most the longest session lifetime.
            .cmd("EXPIRE")
            .arg(&account_key)
            .arg(ttl.as_secs().max(1))
            .arg("GT")
            .ignore()
            .cmd("EXPIRE")
            .arg(&account_key)
            .arg(ttl.as_secs().max(1))
            .arg("NX")
            .ignore()
            // A new session is in no cache, but the same call replaces existing ones.
            .cmd("PUBLISH")
            .arg(self.channel())
            .arg(session_message(key))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }

    async fn refresh(
        &self,
        key: &str,
        data: &SessionData,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let json = serde_json::to_vec(data).map_err(|e| StoreError(e.to_string()))?;
        redis::cmd("SET")
            .arg(self.session_key(key))
            .arg(json)
            .arg("XX")
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<Option<String>>(&mut conn)
            .await
            .map(|_| ())
            .map_err(store_err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(self.session_key(key))
            .ignore()
            .cmd("PUBLISH")
            .arg(self.channel())
            .arg(session_message(key))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }

    async fn delete_account(&self, account_id: &str) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        let account_key = self.account_key(account_id);
        let keys: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&account_key)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        for k in &keys {
            pipe.cmd("DEL").arg(self.session_key(k)).ignore();
        }
        pipe.cmd("DEL").arg(&account_key).ignore();
        pipe.cmd("PUBLISH")
            .arg(self.channel())
            .arg(account_message(account_id))
            .ignore();
        pipe.query_async::<()>(&mut conn).await.map_err(store_err)
    }

    async fn of_account(&self, account_id: &str) -> Result<Vec<(String, SessionData)>, StoreError> {
        let mut conn = self.connection().await?;
        let keys: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.account_key(account_id))
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<String> = keys.iter().map(|k| self.session_key(k)).collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&full)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k, serde_json::from_slice(&v?).ok()?)))
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }
}
