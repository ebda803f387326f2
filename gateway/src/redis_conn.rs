//! The one Redis connection of a gateway process, shared by the session store and the
//! volatile store. It is made lazily inside the proxy's runtime (Pingora has no runtime before
//! it starts), and every command has a short timeout: a dead Redis becomes a quick 503, never
//! a hung request.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::sessions::StoreError;

pub struct RedisConn {
    client: redis::Client,
    prefix: String,
    conn: OnceCell<ConnectionManager>,
}

impl RedisConn {
    /// Checks the URL only; no connection is made until the first command.
    pub fn new(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Ok(RedisConn {
            client: redis::Client::open(url)?,
            prefix: prefix.to_string(),
            conn: OnceCell::new(),
        })
    }

    pub async fn get(&self) -> Result<ConnectionManager, StoreError> {
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
                    .map_err(store_err)
            })
            .await?;
        Ok(conn.clone())
    }

    /// A dedicated pub/sub connection (for session invalidations), with the same short
    /// connect timeout as the shared connection.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, StoreError> {
        tokio::time::timeout(Duration::from_secs(1), self.client.get_async_pubsub())
            .await
            .map_err(|_| StoreError("redis: connect timed out".into()))?
            .map_err(store_err)
    }

    /// `prefix` + `rest`: every key (and channel) Menshen uses is under the configured prefix.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{}", self.prefix, rest)
    }
}

/// Redis errors can echo parts of a URL; report only the category.
pub fn store_err(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {:?}", e.kind()))
}
