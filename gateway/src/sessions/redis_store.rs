//! Redis session store: sessions shared by every gateway instance.
//!
//! Each session is one string key (`{prefix}s:{hash}`) holding JSON with a TTL; each account
//! has a set (`{prefix}as:{account}`) of its session keys so all of them can be ended at once.
//! The connection is made lazily inside the proxy's runtime (Pingora has no runtime before it
//! starts) and every command has a short timeout: a dead Redis turns into a quick 503, not a
//! hung request.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{SessionData, SessionStore, StoreError};

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    conn: OnceCell<ConnectionManager>,
}

impl RedisStore {
    /// Checks the URL only; no connection is made until the first request.
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Ok(RedisStore {
            client: redis::Client::open(url)?,
            prefix: prefix.to_string(),
            conn: OnceCell::new(),
        })
    }

    pub async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                self.client
                    .get_connection_manager_with_config(config)
                    .await
                    .map_err(|e| StoreError(format!("redis connect: {}", e.kind_str())))
            })
            .await?;
        Ok(conn.clone())
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn session_key(&self, key: &str) -> String {
        format!("{}s:{}", self.prefix, key)
    }

    fn account_key(&self, account_id: &str) -> String {
        format!("{}as:{}", self.prefix, account_id)
    }
}

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    /// Redis errors can echo parts of a URL; report only the category.
    fn kind_str(&self) -> String {
        format!("{:?}", self.kind())
    }
}

fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {}", e.kind_str()))
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
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        redis::cmd("DEL")
            .arg(self.session_key(key))
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
        pipe.query_async::<()>(&mut conn).await.map_err(store_err)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.connection().await?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_err)
    }
}
