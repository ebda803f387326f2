//! In-process volatile store for a single gateway.
//!
//! Bounded: anonymous requests write here too (captchas, OpenID Connect flows, certificate
//! challenges), so past [`DEFAULT_CAPACITY`] entries the expired ones go first and then the
//! oldest written, instead of the process growing until it is killed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Reserved, Volatile};
use crate::sessions::StoreError;

/// Entries kept at most: a few hundred bytes each, so tens of MiB at the very most.
pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Default)]
struct Inner {
    values: HashMap<String, (Vec<u8>, Instant)>,
    writes: usize,
    /// Keys in the order they were first written (a key written again keeps its place:
    /// counters are rewritten on every hit). May name keys removed since; skipped then.
    order: VecDeque<String>,
    capacity: usize,
}

pub struct MemoryVolatile {
    inner: Mutex<Inner>,
}

impl Default for MemoryVolatile {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryVolatile {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that keeps at most `capacity` entries (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        MemoryVolatile {
            inner: Mutex::new(Inner {
                capacity: capacity.max(1),
                ..Inner::default()
            }),
        }
    }

    /// How many entries are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.values.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            let Inner { values, order, .. } = &mut *inner;
            order.retain(|k| values.contains_key(k));
            inner.writes = 0;
        }
        Ok(f(&mut inner, now))
    }
}

impl Inner {
    /// Stores `value` under `key`, making room first when the store is full.
    fn insert(&mut self, key: &str, value: Vec<u8>, expires: Instant) {
        if let Some(slot) = self.values.get_mut(key) {
            *slot = (value, expires);
            return;
        }
        // Full: the oldest written goes (the sweep every 1024 writes removes expired ones;
        // sweeping here on every write of a flood would cost a full pass each time).
        while self.values.len() >= self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.values.remove(&oldest);
                }
                None => break,
            }
        }
        self.values.insert(key.to_string(), (value, expires));
        self.order.push_back(key.to_string());
        // Keys removed meanwhile stay in `order` until here: keep it proportional.
        if self.order.len() > 2 * self.capacity {
            let values = &self.values;
            self.order.retain(|k| values.contains_key(k));
        }
    }

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
            i.insert(key, value.to_vec(), now + ttl);
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
                i.insert(lock, lock_value.to_vec(), now + lock_ttl);
                return Reserved::Locked(lock_value.to_vec());
            }
            i.insert(counter, n.to_string().into_bytes(), now + window);
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
            i.insert(lock, lock_value.to_vec(), now + lock_ttl);
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
            i.insert(key, n.to_string().into_bytes(), expires);
            n
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_store_drops_the_oldest_entries() {
        let store = MemoryVolatile::with_capacity(100);
        for n in 0..1000 {
            let put = store
                .put(&format!("k{n}"), b"v", Duration::from_secs(600))
                .await;
            assert!(put.is_ok());
            // Counters rewritten on every hit keep their place and do not grow the store.
            assert!(store.hit("ip:1", Duration::from_secs(60)).await.is_ok());
        }
        assert!(store.len() <= 100, "{} entries", store.len());
        assert_eq!(
            store.get("k999").await.ok().flatten(),
            Some(b"v".to_vec()),
            "the newest stays"
        );
        assert_eq!(
            store.get("k0").await.ok().flatten(),
            None,
            "the oldest went"
        );
        let order = store.inner.lock().map(|i| i.order.len()).unwrap_or(0);
        assert!(order <= 200, "the order list stays proportional: {order}");
    }
}
