//! The login page (`GET /.menshen/login`): account and password form (with an optional
//! picture verification code), help links, other sign-in methods, the operator's notice and the
//! support desk box.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::lang::Lang;
use crate::texts::Texts;
use crate::{LockoutRule, MessageView, render_or_fallback};

/// Characters left as they are in a query value: RFC 3986 unreserved characters and `/`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `value` percent-encoded for a query string (`/` kept, as in `rd=/students`).
pub(crate) fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// Everything the login page shows.
#[derive(Debug, Clone)]
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
    /// The picture verification code (驗證碼), shown after the password field when present.
    pub captcha: Option<CaptchaField<'a>>,
    /// The password suspension rule, stated under the form and in the suspension message.
    pub lockout: LockoutRule,
    /// Where 忘記密碼? leads: the forgot form when mail is configured, else the help page.
    pub forgot_password_href: &'a str,
}

/// The picture verification code field of the login form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptchaField<'a> {
    /// Value of the hidden `captcha_id` field.
    pub id: &'a str,
    /// The picture, e.g. `/.menshen/captcha/ID.png`.
    pub image_src: &'a str,
    /// A GET link that shows the page with a new picture (更換圖片).
    pub refresh_href: &'a str,
}

/// One entry of the "other ways to sign in" list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherMethod<'a> {
    pub label: &'a str,
    pub href: &'a str,
}

/// The message shown above the login form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMessage {
    InvalidCredentials,
    /// A wrong password (or unknown account), with the tries left before the suspension.
    InvalidCredentialsTriesLeft {
        left: u32,
    },
    FormExpired,
    LoggedOut,
    /// Single sign-on: the logout ended the sign-in on every system.
    LoggedOutEverywhere,
    SessionExpired,
    MissingFields,
    /// The picture verification code was wrong.
    CaptchaWrong,
    /// The account is suspended after repeated failures.
    Locked {
        /// When the suspension ends, already formatted for display (e.g. "14:35").
        until: String,
    },
    /// Too many attempts from this network.
    Throttled,
    /// Binding finished; sign in again with the bound method.
    BoundLogInAgain,
    /// OTP binding finished (OTP驗證綁定成功); sign in again with password and code.
    OtpBound,
    /// The account has only a citizen certificate bound: use certificate sign-in.
    UseCertificate,
    /// Sign-in is temporarily unavailable.
    Unavailable,
    /// The password was reset through a mailed link; sign in with the new one.
    PasswordReset,
}

impl LoginMessage {
    fn view(&self, t: &'static Texts) -> MessageView {
        match self {
            LoginMessage::InvalidCredentials => MessageView::error(t.msg_invalid_credentials),
            LoginMessage::InvalidCredentialsTriesLeft { left } => MessageView::error(&format!(
                "{} {}",
                t.msg_invalid_credentials,
                t.msg_tries_left.replace("{left}", &left.to_string())
            )),
            LoginMessage::MissingFields => MessageView::error(t.msg_missing_fields),
            LoginMessage::CaptchaWrong => MessageView::error(t.msg_captcha_wrong),
            LoginMessage::Locked { until } => MessageView::error(&format!(
                "{} {}",
                t.msg_locked.replace("{until}", until),
                t.msg_lift_early
            )),
            LoginMessage::FormExpired => MessageView::warning(t.msg_form_expired),
            LoginMessage::SessionExpired => MessageView::warning(t.msg_session_expired),
            LoginMessage::Throttled => MessageView::warning(t.msg_throttled),
            LoginMessage::UseCertificate => MessageView::warning(t.msg_use_certificate),
            LoginMessage::Unavailable => MessageView::warning(t.msg_unavailable),
            LoginMessage::LoggedOut => MessageView::info(t.msg_logged_out),
            LoginMessage::LoggedOutEverywhere => MessageView::info(t.msg_logged_out_everywhere),
            LoginMessage::BoundLogInAgain => MessageView::success(t.msg_bound_log_in_again),
            LoginMessage::OtpBound => MessageView::success(t.msg_otp_bound),
            LoginMessage::PasswordReset => MessageView::success(t.msg_password_reset),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'a str,
    page: &'a LoginPage<'a>,
    message: Option<MessageView>,
    lockout_hint: String,
    focus_username: bool,
    switch_href: String,
    switch_label: &'static str,
    switch_lang: &'static str,
    p_help_title: &'static str,
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
        subtitle: crate::subtitle(page.site_name, t),
        page,
        message: page.message.as_ref().map(|m| {
            let mut view = m.view(t);
            view.text = page.lockout.fill(&view.text);
            view
        }),
        lockout_hint: page.lockout.fill(t.lockout_hint),
        focus_username: page.username.is_empty(),
        switch_href: switch_href(other, page.rd),
        switch_label: other.texts().switch_to_this_language,
        switch_lang: other.html_lang(),
        p_help_title: page.lang.password_texts().help_title,
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
            captcha: None,
            lockout: LockoutRule::default(),
            forgot_password_href: "/.menshen/help#forgot-password",
        }
    }

    const CAPTCHA: CaptchaField<'static> = CaptchaField {
        id: "cap-42",
        image_src: "/.menshen/captcha/cap-42.png",
        refresh_href: "/.menshen/login?rd=/x&new_captcha=1",
    };

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
        assert!(html.contains("id=\"forgot-account\" href=\"/.menshen/help#forgot-account\""));
        assert!(html.contains("id=\"forgot-password\" href=\"/.menshen/help#forgot-password\""));
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
                LoginMessage::LoggedOutEverywhere,
                "已登出所有系統",
                "You have signed out of all systems",
            ),
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
            (
                LoginMessage::CaptchaWrong,
                "驗證碼錯誤，請重新輸入",
                "verification code is wrong",
            ),
            (
                LoginMessage::Locked {
                    until: "14:35".to_owned(),
                },
                "帳號已暫時停用（連續輸入錯誤 3 次），請於 14:35 後再試",
                "temporarily suspended after repeated failures; try again after 14:35.",
            ),
            (
                LoginMessage::Throttled,
                "嘗試次數過多",
                "Too many sign-in attempts from this network",
            ),
            (
                LoginMessage::BoundLogInAgain,
                "綁定完成，請使用已綁定方式重新登入",
                "sign in again with the method you set up",
            ),
            (
                LoginMessage::UseCertificate,
                "僅綁定自然人憑證，請使用下方「自然人憑證登入」",
                "only has a citizen digital certificate",
            ),
            (
                LoginMessage::Unavailable,
                "暫時無法使用",
                "temporarily unavailable",
            ),
        ] {
            for (lang, text) in [(Lang::ZhTw, zh), (Lang::En, en)] {
                let html = render_login(&LoginPage {
                    message: Some(message.clone()),
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
    fn message_classes() {
        let class = |message: LoginMessage| message.view(&crate::ZH_TW).class;
        assert_eq!(class(LoginMessage::CaptchaWrong), "message-error");
        assert_eq!(
            class(LoginMessage::Locked {
                until: String::new()
            }),
            "message-error"
        );
        assert_eq!(class(LoginMessage::Throttled), "message-warning");
        assert_eq!(class(LoginMessage::BoundLogInAgain), "message-success");
        assert_eq!(class(LoginMessage::LoggedOut), "message-info");
    }

    #[test]
    fn locked_until_is_escaped() {
        let html = render_login(&LoginPage {
            message: Some(LoginMessage::Locked {
                until: "<script>x</script>".to_owned(),
            }),
            ..page(Lang::En)
        });
        assert!(!html.contains("<script"));
        assert!(html.contains("after &#60;script&#62;x&#60;/script&#62;."));
    }

    #[test]
    fn captcha_field() {
        for (lang, label, alt, refresh) in [
            (Lang::ZhTw, "驗證碼", "驗證碼圖片", "更換圖片"),
            (
                Lang::En,
                "Verification code",
                "Verification code picture",
                "New picture",
            ),
        ] {
            let html = render_login(&LoginPage {
                captcha: Some(CAPTCHA),
                ..page(lang)
            });
            assert!(html.contains("<input type=\"hidden\" name=\"captcha_id\" value=\"cap-42\">"));
            assert!(html.contains(&format!("<label for=\"captcha\">{label}</label>")));
            assert!(html.contains(
                "<input id=\"captcha\" name=\"captcha\" type=\"text\" inputmode=\"text\" autocomplete=\"off\" autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"8\" required>"
            ));
            assert!(html.contains(&format!(
                "<img id=\"captcha-image\" class=\"captcha-image\" src=\"/.menshen/captcha/cap-42.png\" alt=\"{alt}\">"
            )));
            assert!(html.contains(&format!(
                "<a id=\"captcha-refresh\" class=\"captcha-refresh\" href=\"/.menshen/login?rd=/x&#38;new_captcha=1\" data-keep=\"username\" data-param=\"u\">{refresh}</a>"
            )));
            // After the password field, before the submit button, inside the form.
            let password = html.find("id=\"password\"").expect("password");
            let captcha = html.find("id=\"captcha\"").expect("captcha");
            let submit = html.find("id=\"login-submit\"").expect("submit");
            let form_end = html.find("</form>").expect("form end");
            assert!(password < captcha && captcha < submit && submit < form_end);
            // Tab order: account, password, captcha, sign in, then 更換圖片.
            let refresh = html.find("id=\"captcha-refresh\"").expect("refresh");
            assert!(submit < refresh);
            let hidden = html.find("name=\"captcha_id\"").expect("hidden");
            assert!(html.find("id=\"login-form\"").expect("form") < hidden && hidden < form_end);
            // Focus stays on the username or password field.
            assert_eq!(html.matches("autofocus").count(), 1);
        }
        let html = render_login(&page(Lang::ZhTw));
        assert!(!html.contains("captcha"));
    }

    #[test]
    fn captcha_values_are_escaped() {
        let html = render_login(&LoginPage {
            captcha: Some(CaptchaField {
                id: "\"><script>",
                image_src: "\" onerror=\"alert(1)",
                refresh_href: "\"><script>",
            }),
            ..page(Lang::ZhTw)
        });
        assert!(!html.contains("<script>"));
        assert!(!html.contains("\" onerror="));
        assert!(html.contains("src=\"&#34; onerror=&#34;alert(1)\""));
    }

    #[test]
    fn lockout_hint_in_both_languages() {
        let zh = render_login(&page(Lang::ZhTw));
        assert!(zh.contains("密碼連續輸入 3 次錯誤，將暫時停用帳號，需等待 15 分鐘後方能再次登入"));
        let en = render_login(&page(Lang::En));
        assert!(en.contains("After 3 wrong passwords in a row the account is suspended"));
        assert!(en.contains("15 minutes"));
    }

    #[test]
    fn the_hint_and_the_suspension_state_the_configured_rule() {
        let rule = LockoutRule {
            failures: 5,
            minutes: 30,
        };
        let zh = render_login(&LoginPage {
            lockout: rule,
            forgot_password_href: "/.menshen/help#forgot-password",
            message: Some(LoginMessage::Locked {
                until: "14:35".into(),
            }),
            ..page(Lang::ZhTw)
        });
        assert!(zh.contains("密碼連續輸入 5 次錯誤，將暫時停用帳號，需等待 30 分鐘後方能再次登入"));
        assert!(zh.contains("帳號已暫時停用（連續輸入錯誤 5 次），請於 14:35 後再試。"));
        assert!(!zh.contains("{n}") && !zh.contains("{minutes}"));
        let en = render_login(&LoginPage {
            lockout: rule,
            forgot_password_href: "/.menshen/help#forgot-password",
            ..page(Lang::En)
        });
        assert!(en.contains("After 5 wrong passwords in a row"));
        assert!(en.contains("after 30 minutes"));
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
            captcha: Some(CAPTCHA),
            ..page(Lang::ZhTw)
        });
        // Scripts only as files of our own (CSP `script-src 'self'`), never inline.
        assert!(
            html.matches("<script").count()
                == html.matches("<script src=\"/.menshen/static/").count()
        );
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
        for handler in [" onclick=", " onload=", " onerror=", " onsubmit="] {
            assert!(!html.contains(handler), "no inline event handlers");
        }
    }
}
