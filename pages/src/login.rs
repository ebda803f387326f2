//! The login page (`GET /.menshen/login`): account and password form, help links, other
//! sign-in methods, the operator's notice and the support desk box.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::lang::Lang;
use crate::render_or_fallback;
use crate::texts::Texts;

/// Characters left as they are in a query value: RFC 3986 unreserved characters and `/`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Everything the login page shows.
#[derive(Debug, Clone, Copy)]
pub struct LoginPage<'a> {
    pub lang: Lang,
    /// The protected system's name, shown under the product name.
    pub site_name: &'a str,
    /// Value of the hidden `csrf` field.
    pub csrf: &'a str,
    /// Value of the hidden `rd` field (an already validated local path).
    pub rd: &'a str,
    /// Account name to refill after a failure (the password is never refilled).
    pub username: &'a str,
    pub message: Option<LoginMessage>,
    /// Operator notice, plain text; newlines are kept.
    pub notice: Option<&'a str>,
    /// Support desk contact and hours, plain text; newlines are kept.
    pub support: Option<&'a str>,
    /// Other sign-in methods shown as buttons; the section is omitted when empty.
    pub other_methods: &'a [OtherMethod<'a>],
}

/// One entry of the "other ways to sign in" list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherMethod<'a> {
    pub label: &'a str,
    pub href: &'a str,
}

/// The message shown above the login form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMessage {
    InvalidCredentials,
    FormExpired,
    LoggedOut,
    SessionExpired,
    MissingFields,
}

impl LoginMessage {
    fn view(self, t: &'static Texts) -> MessageView {
        let (class, text) = match self {
            LoginMessage::InvalidCredentials => ("message-error", t.msg_invalid_credentials),
            LoginMessage::MissingFields => ("message-error", t.msg_missing_fields),
            LoginMessage::FormExpired => ("message-warning", t.msg_form_expired),
            LoginMessage::SessionExpired => ("message-warning", t.msg_session_expired),
            LoginMessage::LoggedOut => ("message-info", t.msg_logged_out),
        };
        MessageView { class, text }
    }
}

struct MessageView {
    class: &'static str,
    text: &'static str,
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'a str,
    page: &'a LoginPage<'a>,
    message: Option<MessageView>,
    focus_username: bool,
    switch_href: String,
    switch_label: &'static str,
    switch_lang: &'static str,
}

/// The language switch link target: `?lang=<other>` plus the percent-encoded `rd`, if any.
fn switch_href(target: Lang, rd: &str) -> String {
    let mut href = format!("?lang={}", target.code());
    if !rd.is_empty() {
        href.push_str("&rd=");
        href.extend(utf8_percent_encode(rd, QUERY_VALUE));
    }
    href
}

/// Renders the login page.
pub fn render_login(page: &LoginPage) -> String {
    let t = page.lang.texts();
    let other = page.lang.other();
    let template = LoginTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: if page.site_name.is_empty() {
            t.tagline
        } else {
            page.site_name
        },
        page,
        message: page.message.map(|m| m.view(t)),
        focus_username: page.username.is_empty(),
        switch_href: switch_href(other, page.rd),
        switch_label: other.texts().switch_to_this_language,
        switch_lang: other.html_lang(),
    };
    render_or_fallback(&template)
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHODS: &[OtherMethod<'static>] = &[
        OtherMethod {
            label: "自然人憑證登入",
            href: "/.menshen/certificate",
        },
        OtherMethod {
            label: "Google帳號登入",
            href: "/.menshen/oidc/google/start",
        },
    ];

    fn page(lang: Lang) -> LoginPage<'static> {
        LoginPage {
            lang,
            site_name: "屏東縣學籍管理系統",
            csrf: "csrf-token-123",
            rd: "/students/list?grade=3&class=2",
            username: "",
            message: None,
            notice: None,
            support: None,
            other_methods: &[],
        }
    }

    #[test]
    fn zh_tw_login_page() {
        let html = render_login(&page(Lang::ZhTw));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<html lang=\"zh-Hant-TW\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("name=\"viewport\""));
        assert!(html.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
        assert!(html.contains("href=\"/.menshen/static/menshen.css\""));
        assert!(html.contains("href=\"/.menshen/static/favicon.svg\""));
        assert!(html.contains("門神"));
        assert!(html.contains("屏東縣學籍管理系統"));
        assert!(
            html.contains("<form id=\"login-form\" method=\"post\" action=\"/.menshen/login\"")
        );
        assert!(html.contains("<label for=\"username\">帳號</label>"));
        assert!(html.contains("<label for=\"password\">密碼</label>"));
        assert!(html.contains("id=\"username\" name=\"username\" type=\"text\""));
        assert!(html.contains("autocomplete=\"username\""));
        assert!(html.contains("id=\"password\" name=\"password\" type=\"password\""));
        assert!(html.contains("autocomplete=\"current-password\""));
        assert!(html.contains("<button id=\"login-submit\" class=\"button button-primary\" type=\"submit\">登入</button>"));
        assert!(html.contains("忘記帳號?"));
        assert!(html.contains("忘記密碼?"));
        assert!(html.contains("href=\"/.menshen/help#forgot\""));
        assert!(html.contains("瀏覽器"));
        assert!(html.contains("Menshen"));
        // Nothing optional when not given.
        assert!(!html.contains("id=\"message\""));
        assert!(!html.contains("其他登入方式"));
        assert!(!html.contains("notice-heading"));
        assert!(!html.contains("support-heading"));
        // Empty username: focus goes to the username field.
        assert!(html.contains("required autofocus>"));
        assert_eq!(html.matches("autofocus").count(), 1);
    }

    #[test]
    fn english_login_page() {
        let html = render_login(&LoginPage {
            message: Some(LoginMessage::InvalidCredentials),
            notice: Some("Maintenance tonight"),
            support: Some("Mon–Fri 08:30–17:30"),
            other_methods: METHODS,
            ..page(Lang::En)
        });
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("<label for=\"username\">Account</label>"));
        assert!(html.contains("<label for=\"password\">Password</label>"));
        assert!(html.contains(">Sign in</button>"));
        assert!(html.contains("Forgot account?"));
        assert!(html.contains("Forgot password?"));
        assert!(html.contains("Other ways to sign in"));
        assert!(html.contains(">Notice</h2>"));
        assert!(html.contains(">Support</h2>"));
        assert!(html.contains("Incorrect account or password."));
        assert!(!html.contains("帳號或密碼錯誤"));
        // The switch goes back to Chinese.
        assert!(html.contains("href=\"?lang=zh-TW&#38;rd="));
        assert!(html.contains(">中文</a>"));
    }

    #[test]
    fn hidden_fields_carry_values() {
        let html = render_login(&page(Lang::ZhTw));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-token-123\">"));
        assert!(html.contains(
            "<input type=\"hidden\" name=\"rd\" value=\"/students/list?grade=3&#38;class=2\">"
        ));
    }

    #[test]
    fn lang_switch_keeps_rd_encoded() {
        let html = render_login(&page(Lang::ZhTw));
        let expected = "?lang=en&rd=/students/list%3Fgrade%3D3%26class%3D2";
        assert_eq!(
            switch_href(Lang::En, "/students/list?grade=3&class=2"),
            expected
        );
        assert!(html.contains(&format!("href=\"{}\"", expected.replace('&', "&#38;"))));
        assert!(html.contains(">English</a>"));
    }

    #[test]
    fn switch_href_encoding() {
        assert_eq!(switch_href(Lang::En, ""), "?lang=en");
        assert_eq!(switch_href(Lang::ZhTw, "/"), "?lang=zh-TW&rd=/");
        assert_eq!(
            switch_href(Lang::En, "/a b+c#d\"<中>"),
            "?lang=en&rd=/a%20b%2Bc%23d%22%3C%E4%B8%AD%3E"
        );
    }

    #[test]
    fn user_values_are_escaped() {
        let html = render_login(&LoginPage {
            site_name: "<script>alert('site')</script>",
            username: "\"><script>alert(1)</script>",
            notice: Some("<script>alert('notice')</script>\n第二行"),
            support: Some("<b>support</b>"),
            csrf: "\"><x>",
            rd: "/\"><script>",
            other_methods: &[OtherMethod {
                label: "<i>label</i>",
                href: "\"><script>",
            }],
            ..page(Lang::ZhTw)
        });
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>support"));
        assert!(!html.contains("<i>label"));
        assert!(!html.contains("\"><x>"));
        assert!(html.contains("&#60;script&#62;"));
        // Newlines in the notice are kept (shown by CSS white-space: pre-line).
        assert!(html.contains("\n第二行"));
    }

    #[test]
    fn username_is_refilled_and_password_focused() {
        let html = render_login(&LoginPage {
            username: "teacher01",
            message: Some(LoginMessage::InvalidCredentials),
            ..page(Lang::ZhTw)
        });
        assert!(html.contains("value=\"teacher01\""));
        assert!(html.contains("autocomplete=\"current-password\" required autofocus>"));
        assert_eq!(html.matches("autofocus").count(), 1);
        assert!(!html.contains("name=\"password\" type=\"password\" value"));
    }

    #[test]
    fn messages_in_alert_box() {
        for (message, zh, en) in [
            (
                LoginMessage::InvalidCredentials,
                "帳號或密碼錯誤",
                "Incorrect account or password",
            ),
            (LoginMessage::FormExpired, "表單已逾時", "form has expired"),
            (LoginMessage::LoggedOut, "您已登出", "You have signed out"),
            (
                LoginMessage::SessionExpired,
                "登入狀態已逾時",
                "session has expired",
            ),
            (
                LoginMessage::MissingFields,
                "請輸入帳號及密碼",
                "Please enter your account",
            ),
        ] {
            for (lang, text) in [(Lang::ZhTw, zh), (Lang::En, en)] {
                let html = render_login(&LoginPage {
                    message: Some(message),
                    ..page(lang)
                });
                let start = html.find("<div id=\"message\"").expect("message box");
                let end = start + html[start..].find("</div>").expect("end of box");
                let boxed = &html[start..end];
                assert!(boxed.contains("role=\"alert\""), "{boxed}");
                assert!(boxed.contains(text), "{message:?} {lang:?}: {boxed}");
            }
        }
    }

    #[test]
    fn other_methods_listed() {
        let html = render_login(&LoginPage {
            other_methods: METHODS,
            ..page(Lang::ZhTw)
        });
        assert!(html.contains("其他登入方式"));
        assert!(html.contains("href=\"/.menshen/certificate\">自然人憑證登入</a>"));
        assert!(html.contains("href=\"/.menshen/oidc/google/start\">Google帳號登入</a>"));
    }

    #[test]
    fn notice_and_support_boxes() {
        let html = render_login(&LoginPage {
            notice: Some("系統將於週六 22:00 維護。"),
            support: Some("☎ 03-5622056\n週一至週五 08:30-17:30"),
            ..page(Lang::ZhTw)
        });
        assert!(html.contains(">公告</h2>"));
        assert!(html.contains("系統將於週六 22:00 維護。"));
        assert!(html.contains(">服務時間</h2>"));
        assert!(html.contains("☎ 03-5622056\n週一至週五 08:30-17:30"));
    }

    #[test]
    fn no_inline_script_or_style() {
        let html = render_login(&LoginPage {
            message: Some(LoginMessage::LoggedOut),
            notice: Some("n"),
            support: Some("s"),
            other_methods: METHODS,
            ..page(Lang::ZhTw)
        });
        assert!(!html.contains("<script"));
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
        for handler in [" onclick=", " onload=", " onerror=", " onsubmit="] {
            assert!(!html.contains(handler), "no inline event handlers");
        }
    }
}
