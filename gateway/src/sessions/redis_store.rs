//! Redis session store: sessions shared by every gateway instance.
//!
//! Each session is one string key (`{prefix}s:{hash}`) holding JSON with a TTL; each account
//! has a set (`{prefix}as:{account}`) of its session keys so all of them can be ended at once.
//! Every write that ends or changes a session also publishes an invalidation on
//! `{prefix}session-events`, in the same transaction ([`super::invalidation`]), so no instance
//! keeps serving it from its cache. The connection is shared with the volatile store
//! ([`crate::redis_conn`]).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;

use super::invalidation::{self, account_message, session_message};
use super::{SessionData, SessionStore, StoreError};
use crate::redis_conn::{RedisConn, store_err};

/// KEYS: the account's set of session keys. ARGV: the session key prefix, the invalidation
/// channel, the message. Deletes every session the set names, the set, and publishes, as
/// one step. (The session keys are built from the set's members inside the script, so this
/// assumes one Redis, not a cluster: as the rest of the store does.)
static DELETE_ACCOUNT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local members = redis.call('SMEMBERS', KEYS[1])
        for _, k in ipairs(members) do
            redis.call('DEL', ARGV[1] .. k)
        end
        redis.call('DEL', KEYS[1])
        redis.call('PUBLISH', ARGV[2], ARGV[3])
        return #members
        ",
    )
});

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
        // One script: reading the account's set and deleting what it names cannot be split
        // by a session created in between (which a read, then a separate MULTI, allowed: that
        // session survived the binding change, and lost its place in the set as well).
        DELETE_ACCOUNT
            .key(self.account_key(account_id))
            .arg(self.session_key(""))
            .arg(self.channel())
            .arg(account_message(account_id))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(store_err)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn data(account: &str) -> SessionData {
        SessionData {
            login_name: "wang01".into(),
            ..SessionData::sample(account, 0)
        }
    }

    /// Sessions created while the account's sessions are being ended, over and over: after
    /// the last end (with no creation running), nothing of the account is left. A read and a
    /// separate delete let a session created in between survive, unlisted in the set.
    /// Uses the local Redis (`MENSHEN_TEST_REDIS`, default 127.0.0.1:6379) under its own prefix.
    #[tokio::test]
    async fn ending_an_account_leaves_no_session_created_meanwhile() {
        let url = std::env::var("MENSHEN_TEST_REDIS")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
        let prefix = format!("mtest-del-{}:", crate::random::token());
        let conn = match RedisConn::new(&url, &prefix) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("redis URL: {e}"),
        };
        let store = Arc::new(RedisStore::new(conn.clone()));
        let creator = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..600 {
                    let key = format!("k{i}");
                    if store
                        .put(&key, &data("acct"), Duration::from_secs(60))
                        .await
                        .is_err()
                    {
                        panic!("put failed: is Redis running at {url}?");
                    }
                }
            })
        };
        while !creator.is_finished() {
            let deleted = store.delete_account("acct").await;
            assert!(deleted.is_ok(), "{deleted:?}");
        }
        assert!(creator.await.is_ok());
        // Every session that exists now is listed in the set; ending the account removes all.
        let mut c = match conn.get().await {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        };
        let live: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}s:*"))
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        let listed: Vec<String> = redis::cmd("SMEMBERS")
            .arg(conn.key("as:acct"))
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        let orphans: Vec<&String> = live
            .iter()
            .filter(|k| !listed.iter().any(|m| **k == conn.key(&format!("s:{m}"))))
            .collect();
        assert!(deleted_everything(&store, &conn).await);
        assert!(
            orphans.is_empty(),
            "sessions outside the account's set: {orphans:?}"
        );
    }

    async fn deleted_everything(store: &RedisStore, conn: &RedisConn) -> bool {
        if store.delete_account("acct").await.is_err() {
            return false;
        }
        let Ok(mut c) = conn.get().await else {
            return false;
        };
        let left: Vec<String> = redis::cmd("KEYS")
            .arg(conn.key("*"))
            .query_async(&mut c)
            .await
            .unwrap_or_default();
        left.is_empty()
    }
}
