//! A real OpenID Connect provider for the tests: the `oidc-provider` npm package, run on
//! loopback by `tests/oidc/provider.mjs`, and the steps a person takes at it (log in with
//! the test account's password, or decline).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::client::{Browser, Page};

pub struct TestProvider {
    pub issuer: String,
    child: Child,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

impl TestProvider {
    /// Starts a provider with one confidential client allowed to redirect to `redirect_uris`.
    pub fn start(client_id: &str, client_secret: &str, redirect_uris: &[String]) -> TestProvider {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "tests/oidc/node_modules is missing: run scripts/setup (it runs npm ci there)"
        );
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir).args([
            "provider.mjs",
            "--port",
            "0",
            "--client-id",
            client_id,
            "--client-secret",
            client_secret,
        ]);
        for uri in redirect_uris {
            cmd.args(["--redirect-uri", uri]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed (scripts/setup installs it)");
        let stdout = child.stdout.take().expect("stdout");
        // Read the READY line on a thread, so a provider that never starts fails the test
        // after a while instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| "(no READY line within 60 s)".to_string());
        let issuer = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the test provider did not start: {line:?}"))
            .to_string();
        TestProvider { issuer, child }
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person at the provider: follows the authorization URL, logs in as `login` (password
/// "pw"), and returns the callback URL the provider sends the browser back to.
pub async fn log_in_at_provider(authorize_url: &str, login: &str) -> String {
    let mut p = Browser::new("");
    let page = p.get(authorize_url).await;
    assert_eq!(page.status, 303, "authorize: {}", page.body);
    let interaction = page.location().expect("interaction").to_string();
    let page = p
        .post_form(
            &format!("{interaction}/login"),
            &[("login", login), ("password", "pw")],
        )
        .await;
    assert_eq!(page.status, 303, "provider login: {}", page.body);
    let resume = page.location().expect("resume").to_string();
    let page = p.get(&resume).await;
    assert_eq!(page.status, 303, "resume: {}", page.body);
    page.location().expect("callback").to_string()
}

/// A person who declines at the provider.
pub async fn decline_at_provider(authorize_url: &str) -> String {
    let mut p = Browser::new("");
    let page = p.get(authorize_url).await;
    let interaction = page.location().expect("interaction").to_string();
    let page = p.post_form(&format!("{interaction}/abort"), &[]).await;
    let resume = page.location().expect("resume").to_string();
    let page = p.get(&resume).await;
    page.location().expect("callback").to_string()
}

/// The path and query of an absolute URL (what the gateway's browser requests).
pub fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    after_scheme
        .find('/')
        .map(|i| after_scheme[i..].to_string())
        .unwrap_or_else(|| "/".into())
}

impl Browser {
    /// Starts a provider flow at the gateway; returns the provider's authorization URL.
    pub async fn start_oidc(&mut self, provider: &str, query: &str) -> String {
        let page: Page = self
            .get(&format!("/.menshen/oidc/{provider}/start?{query}"))
            .await;
        assert_eq!(page.status, 302, "start: {}", page.body);
        page.location().expect("authorization URL").to_string()
    }

    /// Starts linking a provider account from the login settings, as the page's form does:
    /// a POST with the session's CSRF token and `proof` (e.g. `("current_password", pw)`).
    /// Returns the gateway's answer (303 to the provider when accepted).
    pub async fn post_bind_start(&mut self, provider: &str, proof: &[(&str, &str)]) -> Page {
        let settings = self.get("/.menshen/account?tab=settings").await;
        assert_eq!(settings.status, 200, "settings: {}", settings.body);
        let csrf = settings.csrf();
        let mut fields = vec![("csrf", csrf.as_str()), ("purpose", "bind")];
        fields.extend_from_slice(proof);
        self.post_form(&format!("/.menshen/oidc/{provider}/start"), &fields)
            .await
    }

    /// [`Browser::post_bind_start`] with the current password; returns the provider's
    /// authorization URL.
    pub async fn start_oidc_bind(&mut self, provider: &str, password: &str) -> String {
        let page = self
            .post_bind_start(provider, &[("current_password", password)])
            .await;
        assert_eq!(page.status, 303, "bind start: {}", page.body);
        page.location().expect("authorization URL").to_string()
    }
}
