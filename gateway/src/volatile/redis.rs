//! Redis volatile store: the values every gateway instance must agree on. Failure counting
//! is one Lua script, so three wrong passwords spread over two instances lock exactly once.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{FailureCount, Volatile};
use crate::redis_conn::{RedisConn, store_err};
use crate::sessions::StoreError;

/// KEYS: counter, lock. ARGV: threshold, window secs, lock secs, lock value.
static RECORD_FAILURE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
        local n = redis.call('INCR', KEYS[1])
        redis.call('EXPIRE', KEYS[1], ARGV[2])
        if n >= tonumber(ARGV[1]) then
            redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
            redis.call('DEL', KEYS[1])
            return {0, 1}
        end
        return {n, 0}
        ",
    )
});

pub struct RedisVolatile {
    conn: Arc<RedisConn>,
}

impl RedisVolatile {
    pub fn new(conn: Arc<RedisConn>) -> Self {
        RedisVolatile { conn }
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

#[async_trait]
impl Volatile for RedisVolatile {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let mut c = self.conn.get().await?;
        ::redis::cmd("SET")
            .arg(self.conn.key(key))
            .arg(value)
            .arg("EX")
            .arg(secs(ttl))
            .query_async::<()>(&mut c)
            .await
            .map_err(store_err)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.conn.get().await?;
        ::redis::cmd("GET")
            .arg(self.conn.key(key))
            .query_async(&mut c)
            .await
            .map_err(store_err)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut c = self.conn.get().await?;
        ::redis::cmd("GETDEL")
            .arg(self.conn.key(key))
            .query_async(&mut c)
            .await
            .map_err(store_err)
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.get().await?;
        let full: Vec<String> = keys.iter().map(|k| self.conn.key(k)).collect();
        ::redis::cmd("DEL")
            .arg(full)
            .query_async::<()>(&mut c)
            .await
            .map_err(store_err)
    }

    async fn record_failure(
        &self,
        counter: &str,
        lock: &str,
        threshold: u32,
        window: Duration,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<FailureCount, StoreError> {
        let mut c = self.conn.get().await?;
        let (count, locked): (u64, u8) = RECORD_FAILURE
            .key(self.conn.key(counter))
            .key(self.conn.key(lock))
            .arg(threshold)
            .arg(secs(window))
            .arg(secs(lock_ttl))
            .arg(lock_value)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(FailureCount {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            locked: locked == 1,
        })
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let mut c = self.conn.get().await?;
        let full = self.conn.key(key);
        let (n,): (u64,) = ::redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&full)
            .cmd("EXPIRE")
            .arg(&full)
            .arg(secs(window))
            .arg("NX")
            .ignore()
            .query_async(&mut c)
            .await
            .map_err(store_err)?;
        Ok(n)
    }
}
