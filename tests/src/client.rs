//! A test browser: an HTTP client that never follows redirects and keeps cookies in a jar the
//! test can read and tamper with, plus the login steps a person takes.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Method, Response};

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
