//! Error pages: one per [`ErrorKind`], with a title and an explanation in both languages.

use crate::lang::Lang;
use crate::render_or_fallback;
use crate::texts::Texts;

/// What went wrong; decides the HTTP status and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The Host header names no configured site (421).
    UnknownHost,
    /// No such page under `/.menshen/` (404).
    NotFound,
    /// The account may not open this page (403).
    Forbidden,
    /// Malformed request (400).
    BadRequest,
    /// Request body over the limit (413).
    PayloadTooLarge,
    /// The protected legacy system does not answer (502).
    UpstreamDown,
    /// Menshen itself cannot sign anyone in right now, e.g. its store is down (503).
    Unavailable,
    /// Wrong HTTP method for a Menshen endpoint (405).
    MethodNotAllowed,
    /// Too many attempts from this client; wait a few minutes (429).
    TooManyRequests,
    /// A single sign-on hand-off code that was used, expired, or is for another host (410).
    SignInLinkInvalid,
    /// Menshen is overloaded for a moment (login checks or connections at their cap): try
    /// again shortly. Also 503, but unlike [`ErrorKind::Unavailable`] nothing is broken.
    Busy,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests and listings.
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::UnknownHost,
        ErrorKind::NotFound,
        ErrorKind::Forbidden,
        ErrorKind::BadRequest,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UpstreamDown,
        ErrorKind::Unavailable,
        ErrorKind::MethodNotAllowed,
        ErrorKind::TooManyRequests,
        ErrorKind::SignInLinkInvalid,
        ErrorKind::Busy,
    ];

    /// The HTTP status code for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::UnknownHost => 421,
            ErrorKind::NotFound => 404,
            ErrorKind::Forbidden => 403,
            ErrorKind::BadRequest => 400,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UpstreamDown => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::TooManyRequests => 429,
            ErrorKind::SignInLinkInvalid => 410,
            ErrorKind::Busy => 503,
        }
    }

    /// Title and explanation in the given translations.
    fn texts(self, t: &'static Texts) -> (&'static str, &'static str) {
        match self {
            ErrorKind::UnknownHost => (t.err_unknown_host_title, t.err_unknown_host_body),
            ErrorKind::NotFound => (t.err_not_found_title, t.err_not_found_body),
            ErrorKind::Forbidden => (t.err_forbidden_title, t.err_forbidden_body),
            ErrorKind::BadRequest => (t.err_bad_request_title, t.err_bad_request_body),
            ErrorKind::PayloadTooLarge => {
                (t.err_payload_too_large_title, t.err_payload_too_large_body)
            }
            ErrorKind::UpstreamDown => (t.err_upstream_down_title, t.err_upstream_down_body),
            ErrorKind::Unavailable => (t.err_unavailable_title, t.err_unavailable_body),
            ErrorKind::MethodNotAllowed => (
                t.err_method_not_allowed_title,
                t.err_method_not_allowed_body,
            ),
            ErrorKind::TooManyRequests => {
                (t.err_too_many_requests_title, t.err_too_many_requests_body)
            }
            ErrorKind::SignInLinkInvalid => (t.err_sign_in_link_title, t.err_sign_in_link_body),
            ErrorKind::Busy => (t.err_busy_title, t.err_busy_body),
        }
    }
}

/// Everything an error page shows.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPage<'a> {
    pub lang: Lang,
    pub kind: ErrorKind,
    /// Short plain-text reason (escaped).
    pub detail: Option<&'a str>,
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    status: u16,
    title: &'static str,
    body: &'static str,
    detail: Option<&'a str>,
    show_login: bool,
}

/// Renders an error page (the caller sets the status from [`ErrorKind::status`]).
pub fn render_error(page: &ErrorPage) -> String {
    let t = page.lang.texts();
    let (title, body) = page.kind.texts(t);
    let template = ErrorTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        status: page.kind.status(),
        title,
        body,
        detail: page.detail.filter(|d| !d.trim().is_empty()),
        show_login: page.kind != ErrorKind::UnknownHost,
    };
    render_or_fallback(&template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let expected = [
            (ErrorKind::UnknownHost, 421),
            (ErrorKind::NotFound, 404),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::BadRequest, 400),
            (ErrorKind::PayloadTooLarge, 413),
            (ErrorKind::UpstreamDown, 502),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::MethodNotAllowed, 405),
            (ErrorKind::TooManyRequests, 429),
            (ErrorKind::SignInLinkInvalid, 410),
            (ErrorKind::Busy, 503),
        ];
        for (kind, status) in expected {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
        assert_eq!(ErrorKind::ALL.len(), expected.len());
    }

    #[test]
    fn every_kind_renders_in_both_languages() {
        for kind in ErrorKind::ALL {
            let zh = render_error(&ErrorPage {
                lang: Lang::ZhTw,
                kind,
                detail: None,
            });
            let en = render_error(&ErrorPage {
                lang: Lang::En,
                kind,
                detail: None,
            });
            let (zh_title, zh_body) = kind.texts(&crate::ZH_TW);
            let (en_title, en_body) = kind.texts(&crate::EN);
            assert_ne!(zh_title, en_title);
            assert!(zh.contains("<html lang=\"zh-Hant-TW\">"));
            assert!(en.contains("<html lang=\"en\">"));
            assert!(zh.contains(&format!("<h1 id=\"error-title\">{zh_title}</h1>")));
            assert!(en.contains(&format!("<h1 id=\"error-title\">{en_title}</h1>")));
            assert!(zh.contains(zh_body));
            assert!(en.contains(en_body));
            let status = kind.status().to_string();
            assert!(zh.contains(&status) && en.contains(&status));
            assert!(zh.contains("href=\"/\">返回首頁</a>"));
            assert!(en.contains("href=\"/\">Back to the home page</a>"));
            let login_link = "href=\"/.menshen/login\"";
            assert_eq!(
                zh.contains(login_link),
                kind != ErrorKind::UnknownHost,
                "{kind:?}"
            );
            assert_eq!(
                en.contains(login_link),
                kind != ErrorKind::UnknownHost,
                "{kind:?}"
            );
            assert!(!zh.contains("class=\"detail\""));
        }
    }

    #[test]
    fn specific_wording() {
        let zh = |kind| {
            render_error(&ErrorPage {
                lang: Lang::ZhTw,
                kind,
                detail: None,
            })
        };
        assert!(zh(ErrorKind::Unavailable).contains("系統暫時無法使用"));
        assert!(zh(ErrorKind::Unavailable).contains("數分鐘後再試"));
        let en = render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::Unavailable,
            detail: None,
        });
        assert!(en.contains("nobody can sign in right now"));
        let en = render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::UnknownHost,
            detail: None,
        });
        assert!(en.contains("does not serve this site address"));
        let html = zh(ErrorKind::TooManyRequests);
        assert!(html.contains("嘗試次數過多"));
        assert!(html.contains("數分鐘後再試"));
        assert!(html.contains("429"));
        let en = render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::TooManyRequests,
            detail: None,
        });
        assert!(en.contains("Too many attempts"));
        assert!(en.contains("wait a few minutes"));
        let html = zh(ErrorKind::Busy);
        assert!(html.contains("系統忙碌中"));
        assert!(html.contains("請稍候片刻再試一次"));
        assert!(html.contains("503"));
        let en = render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::Busy,
            detail: None,
        });
        assert!(en.contains("Busy right now"));
        assert!(en.contains("try again in a moment"));
    }

    #[test]
    fn all_is_complete_and_distinct() {
        for (i, a) in ErrorKind::ALL.iter().enumerate() {
            for b in &ErrorKind::ALL[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.texts(&crate::EN), b.texts(&crate::EN));
                // Two kinds share 503: overloaded for a moment, or broken for longer.
                let both_503 = [*a, *b] == [ErrorKind::Unavailable, ErrorKind::Busy];
                assert!(both_503 || a.status() != b.status(), "{a:?} {b:?}");
            }
        }
        assert!(ErrorKind::ALL.contains(&ErrorKind::TooManyRequests));
    }

    #[test]
    fn detail_is_escaped() {
        let html = render_error(&ErrorPage {
            lang: Lang::En,
            kind: ErrorKind::BadRequest,
            detail: Some("<script>alert(1)</script> & more"),
        });
        assert!(!html.contains("<script"));
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; more"));
        assert!(html.contains("class=\"detail\""));
    }
}
