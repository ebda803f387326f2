//! Caps on open client connections, overall and per client address.
//!
//! Why: every open client connection costs the gateway memory (tens of KB in Pingora's
//! per-connection state, see `benches/README.md`), so a few thousand idle sockets from one
//! address could take gigabytes. A connection is counted from its first request until it
//! closes: the proxy takes a [`ConnectionPermit`] on a connection's first request, carries it
//! across keep-alive requests (Pingora's per-connection context), and the count drops when
//! Pingora drops that context with the connection. Past a cap the request is answered with a
//! 503 "busy" page and the connection is closed. A connection that never sends a request is
//! not counted; Pingora closes it after 60 s of silence.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Which cap refused a connection (also the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerAddress,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerAddress => "per_address",
        }
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The caps and the connections counted against them. Cloning shares the counts.
#[derive(Clone)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_address: usize,
    open: Arc<Mutex<Open>>,
}

/// One counted connection; the count drops when the last clone is dropped.
pub struct ConnectionPermit {
    open: Arc<Mutex<Open>>,
    address: Option<IpAddr>,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        crate::metrics::CLIENT_CONNECTIONS.dec();
        // A poisoned lock only means another thread panicked while counting; the counts
        // themselves are plain integers and still usable.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(ip) = self.address
            && let Some(n) = open.by_address.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_address.remove(&ip);
            }
        }
    }
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        ConnectionLimits {
            max_total,
            max_per_address,
            open: Arc::new(Mutex::new(Open::default())),
        }
    }

    /// Counts a new connection from `address`, or says which cap it would exceed. A
    /// connection with no IP address (a Unix socket) counts only against the total.
    pub fn admit(&self, address: Option<IpAddr>) -> Result<Arc<ConnectionPermit>, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        if let Some(ip) = address {
            let n = open.by_address.entry(ip).or_insert(0);
            if *n >= self.max_per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
        }
        open.total += 1;
        crate::metrics::CLIENT_CONNECTIONS.inc();
        Ok(Arc::new(ConnectionPermit {
            open: self.open.clone(),
            address,
        }))
    }

    /// Connections counted now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// Connections counted now from `address`.
    pub fn open_from(&self, address: IpAddr) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_address
            .get(&address)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn the_per_address_cap_refuses_only_that_address() {
        let limits = ConnectionLimits::new(10, 2);
        let a1 = limits.admit(Some(A));
        let a2 = limits.admit(Some(A));
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(limits.admit(Some(A)).err(), Some(Refused::PerAddress));
        assert!(
            limits.admit(Some(B)).is_ok(),
            "another address is not affected"
        );
        drop(a1);
        assert_eq!(limits.open_from(A), 1);
        assert!(
            limits.admit(Some(A)).is_ok(),
            "a closed connection frees its place"
        );
    }

    #[test]
    fn the_total_cap_counts_every_address_and_unix_sockets() {
        let limits = ConnectionLimits::new(3, 2);
        let held: Vec<_> = [Some(A), Some(B), None]
            .into_iter()
            .map(|ip| limits.admit(ip))
            .collect();
        assert!(held.iter().all(Result::is_ok));
        assert_eq!(limits.open(), 3);
        assert_eq!(limits.admit(Some(B)).err(), Some(Refused::Total));
        assert_eq!(limits.admit(None).err(), Some(Refused::Total));
        drop(held);
        assert_eq!(limits.open(), 0);
        assert_eq!(limits.open_from(A), 0);
    }

    #[test]
    fn a_permit_shared_across_requests_counts_once_until_the_last_clone_goes() {
        let limits = ConnectionLimits::new(10, 1);
        let first_request = limits.admit(Some(A)).unwrap_or_else(|_| panic!("admitted"));
        let carried = first_request.clone();
        drop(first_request);
        assert_eq!(limits.open_from(A), 1, "still open between requests");
        assert!(limits.admit(Some(A)).is_err());
        drop(carried);
        assert_eq!(limits.open_from(A), 0);
    }
}
