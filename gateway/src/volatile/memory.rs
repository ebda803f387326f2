//! In-process volatile store for a single gateway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Reserved, Volatile};
use crate::sessions::StoreError;

#[derive(Default)]
struct Inner {
    values: HashMap<String, (Vec<u8>, Instant)>,
    writes: usize,
}

#[derive(Default)]
pub struct MemoryVolatile {
    inner: Mutex<Inner>,
}

impl MemoryVolatile {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner, Instant) -> T) -> Result<T, StoreError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| StoreError("in-process store poisoned".into()))?;
        let now = Instant::now();
        inner.writes += 1;
        if inner.writes > 1024 {
            inner.values.retain(|_, (_, exp)| *exp > now);
            inner.writes = 0;
        }
        Ok(f(&mut inner, now))
    }
}

impl Inner {
    fn live(&self, key: &str, now: Instant) -> Option<&Vec<u8>> {
        self.values
            .get(key)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v)
    }

    fn count(&self, key: &str, now: Instant) -> u64 {
        self.live(key, now)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
            .unwrap_or(0)
    }
}

#[async_trait]
impl Volatile for MemoryVolatile {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        self.with(|i, now| {
            i.values
                .insert(key.to_string(), (value.to_vec(), now + ttl));
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|i, now| i.live(key, now).cloned())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|i, now| {
            i.values
                .remove(key)
                .filter(|(_, exp)| *exp > now)
                .map(|(v, _)| v)
        })
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        self.with(|i, _| {
            for k in keys {
                i.values.remove(k);
            }
        })
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
        self.with(|i, now| {
            if let Some(v) = i.live(lock, now) {
                return Reserved::Locked(v.clone());
            }
            let n = i.count(counter, now) + 1;
            if n > u64::from(threshold) {
                i.values.remove(counter);
                i.values
                    .insert(lock.to_string(), (lock_value.to_vec(), now + lock_ttl));
                return Reserved::Locked(lock_value.to_vec());
            }
            i.values.insert(
                counter.to_string(),
                (n.to_string().into_bytes(), now + window),
            );
            Reserved::Attempt(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }

    async fn lock_now(
        &self,
        counter: &str,
        lock: &str,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<(), StoreError> {
        self.with(|i, now| {
            i.values.remove(counter);
            i.values
                .insert(lock.to_string(), (lock_value.to_vec(), now + lock_ttl));
        })
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        self.with(|i, now| {
            let expires = i
                .values
                .get(key)
                .filter(|(_, exp)| *exp > now)
                .map(|(_, exp)| *exp)
                .unwrap_or(now + window);
            let n = i.count(key, now) + 1;
            i.values
                .insert(key.to_string(), (n.to_string().into_bytes(), expires));
            n
        })
    }
}
