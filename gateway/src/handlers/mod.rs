//! Requests under the reserved `/.menshen/` prefix: Menshen's own pages. Nothing under it is
//! ever proxied. One module per flow; this one dispatches.

pub mod home;
pub mod login;
pub mod logout;

use std::net::IpAddr;

use menshen_pages::{ErrorKind, Lang};
use pingora::proxy::Session;

use crate::cookies::{CookieNames, RequestCookies};
use crate::forms::{self, Form, FormError};
use crate::respond::Reply;
use crate::state::{AppState, SiteRuntime};

/// What a handler knows about the request besides the body.
pub struct Request<'a> {
    pub state: &'a AppState,
    pub site: &'a SiteRuntime,
    /// The normalised path.
    pub path: &'a str,
    pub query: Form,
    pub method: http::Method,
    pub cookies: &'a RequestCookies,
    pub names: CookieNames,
    pub lang: Lang,
    pub client_ip: Option<IpAddr>,
}

/// Answers one request under `/.menshen/`.
pub async fn handle(session: &mut Session, req: &Request<'_>) -> Reply {
    let rest = req.path.strip_prefix("/.menshen").unwrap_or("");
    let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
    let post = req.method == http::Method::POST;
    match rest {
        "" | "/" if get => home::get(req).await,
        "/login" if get => login::get(req),
        "/login" if post => login::post(session, req).await,
        "/logout" if post => logout::post(session, req).await,
        "/login" | "/logout" | "" | "/" => {
            Reply::error(req.lang, ErrorKind::MethodNotAllowed, None).with_header(
                "Allow",
                if rest == "/logout" {
                    "POST"
                } else {
                    "GET, HEAD, POST"
                }
                .to_string(),
            )
        }
        _ => match rest.strip_prefix("/static/") {
            Some(name) if get => match menshen_pages::static_asset(name) {
                Some(asset) => Reply::asset(asset.content_type, asset.body),
                None => Reply::error(req.lang, ErrorKind::NotFound, None),
            },
            _ => Reply::error(req.lang, ErrorKind::NotFound, None),
        },
    }
}

/// Reads a form body, or the page that says why it could not be read.
pub async fn read_form(session: &mut Session, lang: Lang) -> Result<Form, Reply> {
    forms::read(session).await.map_err(|e| match e {
        FormError::TooLarge => Reply::error(lang, ErrorKind::PayloadTooLarge, None),
        FormError::NotAForm => Reply::error(
            lang,
            ErrorKind::BadRequest,
            Some("expected an application/x-www-form-urlencoded form"),
        ),
        FormError::Garbled => Reply::error(
            lang,
            ErrorKind::BadRequest,
            Some("the form could not be decoded"),
        ),
        FormError::Unreadable => Reply::error(
            lang,
            ErrorKind::BadRequest,
            Some("the form could not be read"),
        ),
    })
}

/// The page for an unreachable store or database: nobody gets in.
pub fn unavailable(lang: Lang) -> Reply {
    Reply::error(lang, ErrorKind::Unavailable, None).with_header("Retry-After", "30".into())
}

/// Percent-encodes a local path for use inside a query string (`?rd=`).
pub fn encode_query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
