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

impl Router {
    /// The site that names `authority` (`host` or `host:port`, canonical) itself, never the
    /// catch-all; with the port its configured host names, when it names one. Single sign-on
    /// uses this to decide which hosts may receive a hand-off.
    pub fn exact(&self, authority: &str) -> Option<(&Arc<SiteRuntime>, Option<u16>)> {
        let (name, port) = split_host_port(authority);
        if let Some(port) = port
            && let Some(site) = self.by_host.get(authority)
        {
            return Some((site, port.parse().ok()));
        }
        self.by_host.get(name).map(|site| (site, None))
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

    /// The routing table built from a real configuration.
    fn router() -> Router {
        let text = "\
[[listen]]
address = \"127.0.0.1:8080\"
[otp]
keys = \"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"
[[site]]
name = \"registry\"
hosts = [\"registry.school.example\"]
upstreams = [\"127.0.0.1:8081\"]
[[site]]
name = \"hr\"
hosts = [\"hr.school.example:8443\", \"[::1]:9000\"]
upstreams = [\"127.0.0.1:8082\"]
";
        let config = menshen_config::parse(text, "t").unwrap_or_else(|e| panic!("{e}"));
        let sites: Vec<Arc<SiteRuntime>> = config
            .sites
            .into_iter()
            .map(|s| Arc::new(SiteRuntime::new(s).unwrap_or_else(|e| panic!("{e}"))))
            .collect();
        Router::new(&sites)
    }

    #[test]
    fn hosts_match_case_port_and_trailing_dot_and_nothing_else() {
        let r = router();
        let site = |host: &str| r.lookup(Some(host)).map(|s| s.config.name.clone());
        assert_eq!(site("registry.school.example").as_deref(), Some("registry"));
        assert_eq!(
            site("REGISTRY.School.Example.").as_deref(),
            Some("registry")
        );
        assert_eq!(
            site("registry.school.example:8443").as_deref(),
            Some("registry")
        );
        assert_eq!(
            site("registry.school.example.:80").as_deref(),
            Some("registry")
        );
        assert_eq!(site("hr.school.example:8443").as_deref(), Some("hr"));
        assert_eq!(site("HR.school.example.:8443").as_deref(), Some("hr"));
        assert_eq!(site("hr.school.example"), None);
        assert_eq!(site("hr.school.example:443"), None);
        assert_eq!(site("[::1]:9000").as_deref(), Some("hr"));
        assert_eq!(site("other.example"), None);
        assert_eq!(site("registry.school.example:x"), None);
        assert_eq!(site(""), None);
        assert!(
            r.lookup(None).is_none(),
            "no Host and no catch-all: no site"
        );
    }

    #[test]
    fn splits_hosts_and_ports() {
        assert_eq!(split_host_port("a.b:80"), ("a.b", Some("80")));
        assert_eq!(split_host_port("a.b"), ("a.b", None));
        assert_eq!(split_host_port("[::1]:8080"), ("[::1]", Some("8080")));
        assert_eq!(split_host_port("[::1]"), ("[::1]", None));
    }
}
