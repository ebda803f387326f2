//! In-process session store, for a single gateway without Redis (and the demo).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{SessionData, SessionStore, StoreError};

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, (SessionData, Instant)>,
    by_account: HashMap<String, HashSet<String>>,
    puts_since_sweep: usize,
}

/// Sessions in a mutex-guarded map; expired entries are swept every few hundred writes.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError("in-process store poisoned".into()))
    }
}

impl Inner {
    fn sweep(&mut self, now: Instant) {
        self.sessions.retain(|_, (_, exp)| *exp > now);
        let sessions = &self.sessions;
        self.by_account.retain(|_, keys| {
            keys.retain(|k| sessions.contains_key(k));
            !keys.is_empty()
        });
        self.puts_since_sweep = 0;
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<SessionData>, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .sessions
            .get(key)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(d, _)| d.clone()))
    }

    async fn put(&self, key: &str, data: &SessionData, ttl: Duration) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        let now = Instant::now();
        inner.puts_since_sweep += 1;
        if inner.puts_since_sweep > 512 {
            inner.sweep(now);
        }
        inner
            .by_account
            .entry(data.account_id.clone())
            .or_default()
            .insert(key.to_string());
        inner
            .sessions
            .insert(key.to_string(), (data.clone(), now + ttl));
        Ok(())
    }

    async fn refresh(
        &self,
        key: &str,
        data: &SessionData,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(entry) = inner.sessions.get_mut(key) {
            *entry = (data.clone(), Instant::now() + ttl);
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some((data, _)) = inner.sessions.remove(key)
            && let Some(keys) = inner.by_account.get_mut(&data.account_id)
        {
            keys.remove(key);
        }
        Ok(())
    }

    async fn delete_account(&self, account_id: &str) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        if let Some(keys) = inner.by_account.remove(account_id) {
            for k in keys {
                inner.sessions.remove(&k);
            }
        }
        Ok(())
    }

    async fn of_account(&self, account_id: &str) -> Result<Vec<(String, SessionData)>, StoreError> {
        let inner = self.lock()?;
        let now = Instant::now();
        let Some(keys) = inner.by_account.get(account_id) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .iter()
            .filter_map(|k| {
                inner
                    .sessions
                    .get(k)
                    .filter(|(_, exp)| *exp > now)
                    .map(|(d, _)| (k.clone(), d.clone()))
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.lock().map(|_| ())
    }
}
