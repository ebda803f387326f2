//! Telling every gateway instance that a session ended or changed, so their [`SessionCache`]s
//! forget it: the Redis store publishes one message per such write on a pub/sub channel under
//! the configured key prefix, in the same transaction as the write; each instance runs a
//! [`Subscriber`] that applies them.
//!
//! Pub/sub delivers at most once and only to connected subscribers, so the subscriber marks
//! the cache live only once its subscription is confirmed, and takes it down (emptied and
//! bypassed) as soon as the connection ends or a heartbeat goes unanswered. Messages carry the
//! hashed store key or the account id, never a session id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::cache::{Key, SessionCache};
use crate::metrics;
use crate::redis_conn::RedisConn;

/// The channel name after the key prefix: `{prefix}session-events`.
pub const CHANNEL: &str = "session-events";

/// How often the subscriber checks that its connection still answers. A connection that
/// dies quietly (no reset reaches us) is noticed within this plus [`HEARTBEAT_TIMEOUT`]; the
/// cache's own age limit bounds what could be served meanwhile.
const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between attempts to reconnect (the cache is bypassed meanwhile).
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The message for one session, by its hex store key.
pub fn session_message(store_key: &str) -> String {
    format!("s:{store_key}")
}

/// The message for every session of one account.
pub fn account_message(account_id: &str) -> String {
    format!("a:{account_id}")
}

/// What a message asks to forget.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Session(Key),
    Account(&'a str),
}

pub fn parse(payload: &[u8]) -> Option<Event<'_>> {
    if let Some(hex_key) = payload.strip_prefix(b"s:") {
        let mut key: Key = [0; 32];
        hex::decode_to_slice(hex_key, &mut key).ok()?;
        return Some(Event::Session(key));
    }
    let account = std::str::from_utf8(payload.strip_prefix(b"a:")?).ok()?;
    Some(Event::Account(account))
}

/// Applies one message; one that cannot be read empties the cache (it may have named anything).
pub fn apply(cache: &SessionCache, payload: &[u8]) {
    metrics::SESSION_CACHE_INVALIDATIONS.inc();
    match parse(payload) {
        Some(Event::Session(key)) => cache.evict(&key),
        Some(Event::Account(account)) => cache.evict_account(account),
        None => {
            tracing::warn!("unreadable session invalidation; session cache emptied");
            cache.flush();
        }
    }
}

/// Keeps one pub/sub subscription open and applies what arrives; owns the cache's liveness.
pub struct Subscriber {
    pub conn: Arc<RedisConn>,
    pub cache: Arc<SessionCache>,
}

impl Subscriber {
    /// One connection's life: returns when it ends (an error or silence), or `Ok` at shutdown.
    async fn session(&self, channel: &str, shutdown: &mut ShutdownWatch) -> Result<(), String> {
        let pubsub = self.conn.pubsub().await.map_err(|e| e.to_string())?;
        let (mut sink, mut stream) = pubsub.split();
        tokio::time::timeout(HEARTBEAT_TIMEOUT, sink.subscribe(channel))
            .await
            .map_err(|_| "subscribe timed out".to_string())?
            .map_err(|e| format!("subscribe: {:?}", e.kind()))?;
        // Only now can no invalidation be missed: from here every publish reaches us.
        self.cache.set_live(true);
        tracing::info!("session cache on: invalidations subscribed");
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return Ok(()),
                msg = stream.next() => match msg {
                    Some(msg) => apply(&self.cache, msg.get_payload_bytes()),
                    None => return Err("subscription connection closed".into()),
                },
                _ = heartbeat.tick() => {
                    match tokio::time::timeout(HEARTBEAT_TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => self.cache.sweep(Instant::now()),
                        Ok(Err(e)) => return Err(format!("heartbeat: {:?}", e.kind())),
                        Err(_) => return Err("heartbeat unanswered".into()),
                    }
                }
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Subscriber {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let channel = self.conn.key(CHANNEL);
        // Say once that the cache is off, not at every failed reconnect.
        let mut reported = false;
        loop {
            let result = self.session(&channel, &mut shutdown).await;
            if self.cache.is_live() {
                reported = false;
            }
            self.cache.set_live(false);
            match result {
                Ok(()) => return,
                Err(e) if !reported => {
                    tracing::warn!("session cache off (every request asks Redis): {e}");
                    reported = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(RECONNECT_DELAY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let key: Key = [0xab; 32];
        let msg = session_message(&hex::encode(key));
        assert_eq!(parse(msg.as_bytes()), Some(Event::Session(key)));
        let msg = account_message("acc-1");
        assert_eq!(parse(msg.as_bytes()), Some(Event::Account("acc-1")));
    }

    #[test]
    fn unreadable_messages_are_rejected() {
        for bad in [&b"s:zz"[..], b"s:abcd", b"x:1", b"", b"a:\xff"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_unreadable_message_empties_the_cache() {
        use super::super::SessionData;
        let cache = SessionCache::new(Duration::from_secs(1), 10);
        cache.set_live(true);
        let now = Instant::now();
        let t = super::super::Timeouts {
            idle: 100,
            absolute: 1000,
        };
        let super::super::cache::Lookup::Miss(Some(ticket)) = cache.lookup(&[1; 32], now, 0, t)
        else {
            panic!("expected a miss");
        };
        let data = SessionData {
            roles: vec![],
            ..SessionData::sample("a", 0)
        };
        cache.fill([1; 32], Arc::new(data), ticket);
        assert_eq!(cache.len(), 1);
        apply(&cache, b"garbage");
        assert!(cache.is_empty());
    }
}
