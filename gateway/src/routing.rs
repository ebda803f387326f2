//! Which site a request is for, by its Host. An unknown Host is never sent to some default
//! upstream: it gets the 421 page. A site host without a port matches any port; `*` (used by
//! the demo) matches any host that no other site claims.

use std::collections::HashMap;
use std::sync::Arc;

use crate::state::SiteRuntime;

pub struct Router {
    by_host: HashMap<String, Arc<SiteRuntime>>,
    fallback: Option<Arc<SiteRuntime>>,
}

impl Router {
    pub fn new(sites: &[Arc<SiteRuntime>]) -> Self {
        let mut by_host = HashMap::new();
        let mut fallback = None;
        for site in sites {
            for host in &site.config.hosts {
                if host == "*" {
                    fallback = Some(site.clone());
                } else {
                    by_host.insert(host.clone(), site.clone());
                }
            }
        }
        Router { by_host, fallback }
    }

    /// `host` is the Host header (or the request target's authority) as sent.
    pub fn lookup(&self, host: Option<&str>) -> Option<&Arc<SiteRuntime>> {
        let Some(host) = host else {
            return self.fallback.as_ref();
        };
        let host = host.trim().to_ascii_lowercase();
        let (name, port) = split_host_port(&host);
        let name = name.strip_suffix('.').unwrap_or(name);
        if let Some(port) = port
            && let Some(site) = self.by_host.get(&format!("{name}:{port}"))
        {
            return Some(site);
        }
        self.by_host.get(name).or(self.fallback.as_ref())
    }
}

/// Splits `host[:port]`, keeping IPv6 literals (`[::1]:8080`) whole.
fn split_host_port(host: &str) -> (&str, Option<&str>) {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => {
                let port = host[end + 1..].strip_prefix(':');
                (&host[..=end], port)
            }
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => (name, Some(port)),
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_hosts_and_ports() {
        assert_eq!(split_host_port("a.b:80"), ("a.b", Some("80")));
        assert_eq!(split_host_port("a.b"), ("a.b", None));
        assert_eq!(split_host_port("[::1]:8080"), ("[::1]", Some("8080")));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
    }
}
