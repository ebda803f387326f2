//! A test browser: an HTTP client that never follows redirects and keeps cookies in a jar the
//! test can read and tamper with, plus the login steps a person takes.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Method, Response};

#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    pub base: String,
    /// Cookie name → value, as the gateway set them.
    pub cookies: BTreeMap<String, String>,
    /// Host header to send (None: the URL's host).
    pub host: Option<String>,
}

/// The answer to one request, read whole.
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The value of the hidden `csrf` field in a form on this page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf field in page:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("csrf end") + start;
        self.body[start..end].to_string()
    }
}

/// Sends `request` as raw bytes over a new connection (for requests an HTTP client library
/// would refuse or normalise) and returns everything the gateway answered until it closed
/// the connection or 10 s passed. Send `Connection: close` to get a prompt end.
pub async fn raw_request(port: u16, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in a raw answer (0 when there is none).
pub fn raw_status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The body of the first response in a raw answer.
pub fn raw_body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The Prometheus text a gateway serves on its metrics listener at `port`.
pub async fn scrape_metrics(port: u16) -> String {
    client_builder()
        .build()
        .expect("client")
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics body")
}

pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .no_proxy()
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser::with_client(base, client_builder().build().expect("client"))
    }

    pub fn with_client(base: &str, client: Client) -> Browser {
        Browser {
            client,
            base: base.to_string(),
            cookies: BTreeMap::new(),
            host: None,
        }
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Sends a request like a browser navigation (Accept: text/html) with the jar's cookies.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(String, &str)>,
    ) -> Page {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        let mut has_accept = false;
        for (k, v) in headers {
            has_accept |= k.eq_ignore_ascii_case("accept");
            req = req.header(*k, *v);
        }
        if !has_accept {
            req = req.header("Accept", "text/html,application/xhtml+xml");
        }
        if let Some(c) = self.cookie_header() {
            req = req.header("Cookie", c);
        }
        if let Some(h) = &self.host {
            req = req.header("Host", h.as_str());
        }
        if let Some((b, content_type)) = body {
            req = req.header("Content-Type", content_type).body(b);
        }
        let resp = req.send().await.expect("request to gateway");
        self.read(resp).await
    }

    async fn read(&mut self, resp: Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            self.store_cookie(v);
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    fn store_cookie(&mut self, v: &HeaderValue) {
        let s = v.to_str().unwrap_or("");
        let first = s.split(';').next().unwrap_or("");
        if let Some((name, value)) = first.split_once('=') {
            if s.contains("Max-Age=0") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.request(Method::GET, path, &[], None).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form(fields);
        self.request(
            Method::POST,
            path,
            &[],
            Some((body, "application/x-www-form-urlencoded")),
        )
        .await
    }

    /// Opens the login page and submits the form, as a person would.
    pub async fn login(&mut self, user: &str, password: &str, rd: &str) -> Page {
        let page = self.get("/.menshen/login").await;
        assert_eq!(page.status, 200, "login page: {}", page.body);
        let csrf = page.csrf();
        self.post_form(
            "/.menshen/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("rd", rd),
            ],
        )
        .await
    }

    pub fn session_cookie(&self) -> Option<&String> {
        self.cookies
            .get("menshen")
            .or_else(|| self.cookies.get("__Host-menshen"))
    }
}

/// `application/x-www-form-urlencoded` body.
pub fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Seconds since the Unix epoch (for computing OTP codes as an authenticator app would).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A code for a step later than `used_step` (the last step this account used): each code is
/// accepted once, and only within ±1 step of now, so this waits (at most one 30 s step) until
/// such a step is acceptable. Waiting for the clock, not measuring it.
pub async fn fresh_code(secret: &menshen_otp::totp::Secret, used_step: u64) -> String {
    while now() / 30 < used_step {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    menshen_otp::totp::code_at(secret, now() + 30)
}

/// The text of the element with `id` (its first text node), from a page's HTML.
pub fn element_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\""))?;
    let open_end = html[start..].find('>')? + start + 1;
    let close = html[open_end..].find('<')? + open_end;
    Some(html[open_end..close].trim().to_string())
}

/// The `value` of the hidden input named `name`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

impl Browser {
    /// Binds OTP through the real pages, as a person would on first login: password, the
    /// forced binding page, the OTP page (secret read from the page, code computed like an
    /// authenticator app), and back to the login page. Returns the secret.
    pub async fn bind_otp(&mut self, user: &str, password: &str) -> menshen_otp::totp::Secret {
        let page = self.login(user, password, "/").await;
        assert_eq!(page.status, 303, "password step: {}", page.body);
        assert_eq!(
            page.location(),
            Some("/.menshen/bind"),
            "an account without a second factor must bind"
        );
        self.bind_otp_in_session().await
    }

    /// The OTP binding pages, from a session that may bind without proving its owner again
    /// (the forced first binding).
    pub async fn bind_otp_in_session(&mut self) -> menshen_otp::totp::Secret {
        self.bind_otp_with_proof(&[]).await
    }

    /// Re-binding OTP from a signed-in session, with the current password the form asks for.
    pub async fn rebind_otp(&mut self, password: &str) -> menshen_otp::totp::Secret {
        self.bind_otp_with_proof(&[("current_password", password)])
            .await
    }

    /// The OTP binding pages with `proof` (extra form fields) sent along with the code.
    pub async fn bind_otp_with_proof(
        &mut self,
        proof: &[(&str, &str)],
    ) -> menshen_otp::totp::Secret {
        let page = self.get("/.menshen/bind/otp").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let shown =
            element_text(&page.body, "otp-secret").expect("the secret is shown for manual entry");
        let secret = menshen_otp::totp::Secret::from_base32(&shown).expect("base32 secret");
        let bind_id = hidden_value(&page.body, "bind_id").expect("bind_id");
        let code = menshen_otp::totp::code_at(&secret, now());
        let csrf = page.csrf();
        let mut fields = vec![
            ("csrf", csrf.as_str()),
            ("bind_id", bind_id.as_str()),
            ("code", code.as_str()),
        ];
        fields.extend_from_slice(proof);
        let done = self.post_form("/.menshen/bind/otp", &fields).await;
        assert_eq!(done.status, 303, "binding: {}", done.body);
        assert_eq!(done.location(), Some("/.menshen/login?bound=1&via=otp"));
        secret
    }

    /// Password then OTP. The code is the one for the next time step (accepted with ±1 step
    /// of skew), so a login right after binding does not reuse the binding's step.
    pub async fn login_with_otp(
        &mut self,
        user: &str,
        password: &str,
        rd: &str,
        secret: &menshen_otp::totp::Secret,
    ) -> Page {
        let page = self.login(user, password, rd).await;
        assert_eq!(page.status, 303, "password step: {}", page.body);
        assert_eq!(page.location(), Some("/.menshen/otp"));
        self.submit_otp(&menshen_otp::totp::code_at(secret, now() + 30))
            .await
    }

    /// Opens the OTP page and submits `code`.
    pub async fn submit_otp(&mut self, code: &str) -> Page {
        let page = self.get("/.menshen/otp").await;
        assert_eq!(page.status, 200, "otp page: {}", page.body);
        let csrf = page.csrf();
        self.post_form("/.menshen/otp", &[("csrf", &csrf), ("code", code)])
            .await
    }

    /// The whole first-time path: bind OTP, then log in with password and OTP.
    pub async fn sign_in(
        &mut self,
        user: &str,
        password: &str,
        rd: &str,
    ) -> (Page, menshen_otp::totp::Secret) {
        let secret = self.bind_otp(user, password).await;
        let page = self.login_with_otp(user, password, rd, &secret).await;
        (page, secret)
    }
}
