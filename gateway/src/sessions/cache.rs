//! A per-instance copy of recently read sessions, so a proxied request usually costs no Redis
//! round trip (the round trip was ~40 % of the gateway's CPU under load).
//!
//! The copy is only ever a shortcut for what Redis says, and it fails closed:
//! - an entry is served for at most [`MAX_AGE`] after it was read from Redis, whatever else
//!   happens, so even a lost invalidation is bounded;
//! - every write that ends or changes a session publishes an invalidation, which every
//!   instance's subscriber applies here ([`super::invalidation`]); `destroy_account` evicts by
//!   account id too;
//! - while the subscription is not confirmed live the cache is empty and bypassed, and it is
//!   flushed the moment the subscription drops, a Redis command fails, or a heartbeat goes
//!   unanswered;
//! - a fill that raced with an eviction or a flush is dropped (an epoch counter), so an
//!   invalidation that arrives while a Redis read is in flight cannot be undone by that read;
//! - only sessions that exist are kept (no negative entries), and the size is bounded, so a
//!   flood of made-up cookies costs Redis reads, never memory.
//!
//! The session timeouts are checked on every hit against the cached record, exactly as
//! [`super::Sessions::load`] checks them against the stored one; an entry that looks idle or
//! too old is dropped and the store decides.
//!
//! Everything here is synchronous and takes time as arguments: the monotonic [`Instant`] for the
//! cache's own age limit, Unix seconds for the session's timeouts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Liveness, SessionData, Timeouts};
use crate::metrics;

/// How long a cached session may be served without asking Redis again. It bounds how long a
/// session that ended elsewhere can still be used here if its invalidation is lost (and how
/// long a Redis outage can go unnoticed by a busy session); one second costs one Redis read
/// per second per active session, which is nothing next to one per request.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// At most this many sessions are kept; a full cache first drops expired entries, then
/// everything (entries are at most [`MAX_AGE`] old, so this is the number of distinct sessions
/// used within about a second, far above what one instance serves).
pub const CAPACITY: usize = 100_000;

/// A session's store key before hex encoding: the SHA-256 of its id (never the id itself).
pub type Key = [u8; 32];

/// What [`SessionCache::lookup`] found.
#[derive(Debug)]
pub enum Lookup {
    /// A live session, served from memory. `refresh` is the `last_seen` to write behind to the
    /// store (at most once per refresh interval per session), when one is due.
    Hit {
        data: Arc<SessionData>,
        refresh: Option<u64>,
    },
    /// Ask the store. With a ticket, the answer may be cached ([`SessionCache::fill`]); without
    /// one the cache is bypassed (the invalidation subscription is not live).
    Miss(Option<Ticket>),
}

/// Permission to cache the answer of one store read, taken before the read was sent.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    started: Instant,
}

#[derive(Debug)]
struct Entry {
    data: Arc<SessionData>,
    /// When the read that produced `data` was sent (the age limit counts from here).
    fetched: Instant,
    /// The newest `last_seen` the store holds or is being sent: the idle timeout counts from
    /// here, and a write-behind refresh is claimed by moving it forward.
    last_seen: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Whether invalidations are being received. Entries exist only while it is true.
    live: bool,
    /// Bumped by every eviction, flush and change of `live`; a fill whose ticket is older is
    /// dropped.
    epoch: u64,
    entries: HashMap<Key, Entry>,
    /// Account id → its cached sessions, for `destroy_account`.
    by_account: HashMap<String, Vec<Key>>,
}

impl Inner {
    fn remove(&mut self, key: &Key) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        if let Some(keys) = self.by_account.get_mut(&entry.data.account_id) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_account.remove(&entry.data.account_id);
            }
        }
    }

    fn clear(&mut self) {
        self.epoch += 1;
        self.entries.clear();
        self.by_account.clear();
    }

    fn sweep(&mut self, at: Instant, max_age: Duration) {
        self.entries
            .retain(|_, e| at.saturating_duration_since(e.fetched) < max_age);
        let entries = &self.entries;
        self.by_account.retain(|_, keys| {
            keys.retain(|k| entries.contains_key(k));
            !keys.is_empty()
        });
    }
}

/// The cache itself: one mutex-guarded map, held only for a lookup or an update (no await
/// while holding it).
#[derive(Debug)]
pub struct SessionCache {
    inner: Mutex<Inner>,
    max_age: Duration,
    capacity: usize,
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new(MAX_AGE, CAPACITY)
    }
}

impl SessionCache {
    pub fn new(max_age: Duration, capacity: usize) -> Self {
        SessionCache {
            inner: Mutex::new(Inner::default()),
            max_age,
            capacity: capacity.max(1),
        }
    }

    /// A poisoned lock means a panic while updating: the contents cannot be trusted, so the
    /// caller bypasses the cache (`None`).
    fn lock(&self) -> Option<MutexGuard<'_, Inner>> {
        self.inner.lock().ok()
    }

    /// Looks `key` up at monotonic time `at` and Unix time `now`.
    pub fn lookup(&self, key: &Key, at: Instant, now: u64, timeouts: Timeouts) -> Lookup {
        let Some(mut inner) = self.lock() else {
            metrics::SESSION_CACHE_BYPASS.inc();
            return Lookup::Miss(None);
        };
        if !inner.live {
            metrics::SESSION_CACHE_BYPASS.inc();
            return Lookup::Miss(None);
        }
        let ticket = Some(Ticket {
            epoch: inner.epoch,
            started: at,
        });
        let Some(entry) = inner.entries.get_mut(key) else {
            metrics::SESSION_CACHE_MISS.inc();
            return Lookup::Miss(ticket);
        };
        let fresh = at.saturating_duration_since(entry.fetched) < self.max_age;
        let verdict = timeouts.liveness(entry.data.created_at, entry.last_seen, now);
        match verdict {
            Liveness::Live { refresh_due } if fresh => {
                let refresh = refresh_due.then(|| {
                    entry.last_seen = now;
                    now
                });
                metrics::SESSION_CACHE_HIT.inc();
                Lookup::Hit {
                    data: entry.data.clone(),
                    refresh,
                }
            }
            // Too old to serve, or it looks idle or past its absolute timeout here (another
            // instance may have extended it): the store decides.
            _ => {
                inner.remove(key);
                metrics::SESSION_CACHE_MISS.inc();
                Lookup::Miss(ticket)
            }
        }
    }

    /// Keeps what the store answered for `key`, unless anything was evicted or flushed since
    /// the ticket was taken.
    pub fn fill(&self, key: Key, data: Arc<SessionData>, ticket: Ticket) {
        let Some(mut inner) = self.lock() else {
            return;
        };
        if !inner.live || inner.epoch != ticket.epoch {
            return;
        }
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            inner.sweep(ticket.started, self.max_age);
            if inner.entries.len() >= self.capacity {
                // Emptying does not make anything stale, so the epoch may move on with it.
                inner.clear();
            }
        }
        inner.remove(&key);
        inner
            .by_account
            .entry(data.account_id.clone())
            .or_default()
            .push(key);
        let last_seen = data.last_seen;
        inner.entries.insert(
            key,
            Entry {
                data,
                fetched: ticket.started,
                last_seen,
            },
        );
    }

    /// Forgets one session (it ended or changed, here or on another instance).
    pub fn evict(&self, key: &Key) {
        if let Some(mut inner) = self.lock() {
            inner.epoch += 1;
            inner.remove(key);
        }
    }

    /// Forgets every session of one account.
    pub fn evict_account(&self, account_id: &str) {
        if let Some(mut inner) = self.lock() {
            inner.epoch += 1;
            if let Some(keys) = inner.by_account.remove(account_id) {
                for k in keys {
                    inner.entries.remove(&k);
                }
            }
        }
    }

    /// Forgets everything (Redis failed, or an invalidation could not be read).
    pub fn flush(&self) {
        if let Some(mut inner) = self.lock() {
            inner.clear();
        }
    }

    /// Whether invalidations are being received. Going down flushes; while down, every lookup
    /// is a bypass.
    pub fn set_live(&self, live: bool) {
        if let Some(mut inner) = self.lock() {
            inner.clear();
            inner.live = live;
        }
        metrics::SESSION_CACHE_LIVE.set(i64::from(live));
    }

    pub fn is_live(&self) -> bool {
        self.lock().is_some_and(|i| i.live)
    }

    /// Drops entries too old to be served (run periodically, so unused sessions do not linger).
    pub fn sweep(&self, at: Instant) {
        if let Some(mut inner) = self.lock() {
            inner.sweep(at, self.max_age);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map_or(0, |i| i.entries.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::Factor;
    use super::*;

    const T: Timeouts = Timeouts {
        idle: 100,
        absolute: 1000,
    };

    fn data(account: &str, created_at: u64, last_seen: u64) -> Arc<SessionData> {
        Arc::new(SessionData {
            factors: vec![Factor::Password, Factor::Otp],
            auth_method: "password+otp".into(),
            last_seen,
            ..SessionData::sample(account, created_at)
        })
    }

    fn key(n: u8) -> Key {
        [n; 32]
    }

    fn live_cache() -> SessionCache {
        let c = SessionCache::new(Duration::from_secs(1), 100);
        c.set_live(true);
        c
    }

    fn ticket(c: &SessionCache, k: &Key, at: Instant) -> Ticket {
        match c.lookup(k, at, 0, T) {
            Lookup::Miss(Some(t)) => t,
            other => panic!("expected a miss with a ticket, got {other:?}"),
        }
    }

    fn is_hit(c: &SessionCache, k: &Key, at: Instant, now: u64) -> bool {
        matches!(c.lookup(k, at, now, T), Lookup::Hit { .. })
    }

    #[test]
    fn a_filled_entry_is_served_until_its_max_age() {
        let c = live_cache();
        let t0 = Instant::now();
        let t = ticket(&c, &key(1), t0);
        c.fill(key(1), data("a", 10, 10), t);
        assert!(is_hit(&c, &key(1), t0 + Duration::from_millis(999), 10));
        assert!(!is_hit(&c, &key(1), t0 + Duration::from_secs(1), 10));
        // The stale entry is gone, not kept.
        assert!(c.is_empty());
    }

    #[test]
    fn nothing_is_cached_or_served_while_not_live() {
        let c = SessionCache::new(Duration::from_secs(1), 100);
        let t0 = Instant::now();
        assert!(matches!(c.lookup(&key(1), t0, 0, T), Lookup::Miss(None)));
        let c = live_cache();
        let t = ticket(&c, &key(1), t0);
        c.fill(key(1), data("a", 0, 0), t);
        assert!(is_hit(&c, &key(1), t0, 0));
        c.set_live(false);
        assert!(c.is_empty());
        assert!(matches!(c.lookup(&key(1), t0, 0, T), Lookup::Miss(None)));
    }

    #[test]
    fn a_fill_that_raced_with_an_invalidation_is_dropped() {
        let t0 = Instant::now();
        type Event = fn(&SessionCache);
        let events: [Event; 5] = [
            |c| c.evict(&key(1)),
            |c| c.evict(&key(9)),
            |c| c.evict_account("someone-else"),
            |c| c.flush(),
            |c| {
                c.set_live(false);
                c.set_live(true)
            },
        ];
        for event in events {
            let c = live_cache();
            let t = ticket(&c, &key(1), t0);
            event(&c);
            c.fill(key(1), data("a", 0, 0), t);
            assert!(!is_hit(&c, &key(1), t0, 0));
        }
    }

    #[test]
    fn eviction_by_key_and_by_account() {
        let c = live_cache();
        let t0 = Instant::now();
        for (k, account) in [(1, "a"), (2, "a"), (3, "b")] {
            let t = ticket(&c, &key(k), t0);
            c.fill(key(k), data(account, 0, 0), t);
        }
        c.evict(&key(1));
        assert!(!is_hit(&c, &key(1), t0, 0));
        assert!(is_hit(&c, &key(2), t0, 0));
        c.evict_account("a");
        assert!(!is_hit(&c, &key(2), t0, 0));
        assert!(is_hit(&c, &key(3), t0, 0));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn timeouts_are_checked_on_every_hit() {
        let c = live_cache();
        let t0 = Instant::now();
        // Idle since 50: fine at 149, over at 150 (then the store decides).
        for (k, now, alive) in [(1, 149, true), (2, 150, false)] {
            let t = ticket(&c, &key(k), t0);
            c.fill(key(k), data("a", 0, 50), t);
            assert_eq!(is_hit(&c, &key(k), t0, now), alive, "at {now}");
        }
        let t = ticket(&c, &key(3), t0);
        c.fill(key(3), data("a", 0, 995), t);
        assert!(is_hit(&c, &key(3), t0, 999));
        assert!(!is_hit(&c, &key(3), t0, 1000), "absolute timeout");
    }

    #[test]
    fn a_refresh_is_claimed_once_per_interval() {
        let c = live_cache();
        let t0 = Instant::now();
        let t = ticket(&c, &key(1), t0);
        c.fill(key(1), data("a", 0, 0), t);
        let refresh = |now| match c.lookup(&key(1), t0, now, T) {
            Lookup::Hit { refresh, .. } => refresh,
            other => panic!("expected a hit, got {other:?}"),
        };
        // Idle 100 s: a refresh every 10 s.
        assert_eq!(refresh(9), None);
        assert_eq!(refresh(10), Some(10));
        assert_eq!(refresh(11), None, "claimed by the previous request");
        assert_eq!(refresh(19), None);
        assert_eq!(refresh(20), Some(20));
        // Idle counts from the refresh: 20 + 99 is still alive.
        assert_eq!(refresh(29), None);
        assert!(is_hit(&c, &key(1), t0, 119));
    }

    #[test]
    fn the_size_is_bounded() {
        let c = SessionCache::new(Duration::from_secs(1), 3);
        c.set_live(true);
        let t0 = Instant::now();
        for k in 0..3 {
            let t = ticket(&c, &key(k), t0);
            c.fill(key(k), data("a", 0, 0), t);
        }
        assert_eq!(c.len(), 3);
        // Full of entries that are still fresh: emptied, then the new one goes in.
        let t = ticket(&c, &key(7), t0);
        c.fill(key(7), data("a", 0, 0), t);
        assert_eq!(c.len(), 1);
        // Full of stale entries: those are swept first.
        for k in 0..2 {
            let t = ticket(&c, &key(k), t0);
            c.fill(key(k), data("a", 0, 0), t);
        }
        let later = t0 + Duration::from_millis(1500);
        let t = ticket(&c, &key(8), later);
        c.fill(key(8), data("a", 0, 0), t);
        assert_eq!(c.len(), 1);
        assert!(is_hit(&c, &key(8), later, 0));
    }

    #[test]
    fn sweep_drops_old_entries_and_their_account_index() {
        let c = live_cache();
        let t0 = Instant::now();
        let t = ticket(&c, &key(1), t0);
        c.fill(key(1), data("a", 0, 0), t);
        c.sweep(t0 + Duration::from_secs(2));
        assert!(c.is_empty());
        assert!(c.lock().is_some_and(|i| i.by_account.is_empty()));
    }
}
