//! Redis volatile store: the values every gateway instance must agree on. Reserving an
//! attempt is one Lua script, so attempts spread over two instances, or sent in parallel,
//! are counted exactly and never get past the limit.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;

use super::{Reserved, Volatile};
use crate::redis_conn::{RedisConn, store_err};
use crate::sessions::StoreError;

/// KEYS: counter, lock. ARGV: window secs, threshold, lock secs, lock value.
/// Returns {1, lock value} when suspended, {0, attempt number} otherwise.
static RESERVE: LazyLock<::redis::Script> = LazyLock::new(|| {
    ::redis::Script::new(
        r"
        local l = redis.call('GET', KEYS[2])
        if l then return {1, l} end
        local n = redis.call('INCR', KEYS[1])
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        if n > tonumber(ARGV[2]) then
            redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
            redis.call('DEL', KEYS[1])
            return {1, ARGV[4]}
        end
        return {0, tostring(n)}
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

    async fn reserve(
        &self,
        counter: &str,
        lock: &str,
        threshold: u32,
        window: Duration,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<Reserved, StoreError> {
        let mut c = self.conn.get().await?;
        let (locked, value): (u8, Vec<u8>) = RESERVE
            .key(self.conn.key(counter))
            .key(self.conn.key(lock))
            .arg(secs(window))
            .arg(threshold)
            .arg(secs(lock_ttl))
            .arg(lock_value)
            .invoke_async(&mut c)
            .await
            .map_err(store_err)?;
        if locked == 1 {
            return Ok(Reserved::Locked(value));
        }
        let n = std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| StoreError("redis: unexpected attempt count".into()))?;
        Ok(Reserved::Attempt(n))
    }

    async fn lock_now(
        &self,
        counter: &str,
        lock: &str,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<(), StoreError> {
        let mut c = self.conn.get().await?;
        ::redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.conn.key(lock))
            .arg(lock_value)
            .arg("EX")
            .arg(secs(lock_ttl))
            .ignore()
            .cmd("DEL")
            .arg(self.conn.key(counter))
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(store_err)
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
