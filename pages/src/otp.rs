//! The OTP step of signing in (`GET /.menshen/otp`): after the password, the 6-digit code from
//! the authenticator app.

use crate::lang::Lang;
use crate::texts::Texts;
use crate::{LockoutRule, MessageView, render_or_fallback};

/// Everything the OTP sign-in page (OTP 驗證) shows.
#[derive(Debug, Clone)]
pub struct OtpPage<'a> {
    pub lang: Lang,
    /// Value of the hidden `csrf` field of both forms (code and logout).
    pub csrf: &'a str,
    pub display_name: &'a str,
    pub message: Option<OtpMessage>,
    /// The OTP suspension rule, stated under the form and in the suspension message.
    pub lockout: LockoutRule,
}

/// The message shown above the code field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpMessage {
    WrongCode,
    /// A wrong code, with the tries left before the suspension.
    WrongCodeTriesLeft {
        left: u32,
    },
    /// Too many wrong codes; the account is suspended. The code form is not shown.
    Locked {
        /// When the suspension ends, already formatted for display (e.g. "14:35").
        until: String,
    },
    /// The page (its form) has expired.
    Expired,
}

impl OtpMessage {
    fn view(&self, t: &'static Texts) -> MessageView {
        match self {
            OtpMessage::WrongCode => MessageView::error(t.msg_otp_wrong_code),
            OtpMessage::WrongCodeTriesLeft { left } => MessageView::error(&format!(
                "{} {}",
                t.msg_otp_wrong_code,
                t.msg_tries_left.replace("{left}", &left.to_string())
            )),
            OtpMessage::Locked { until } => MessageView::error(&format!(
                "{} {}",
                t.msg_otp_locked.replace("{until}", until),
                t.msg_lift_early
            )),
            OtpMessage::Expired => MessageView::warning(t.msg_otp_expired),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "otp.html")]
struct OtpTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    page: &'a OtpPage<'a>,
    message: Option<MessageView>,
    lockout_hint: String,
    /// No code form while the account is suspended: only the way back.
    show_form: bool,
}

/// Renders the OTP sign-in page.
pub fn render_otp(page: &OtpPage) -> String {
    let t = page.lang.texts();
    render_or_fallback(&OtpTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        page,
        message: page.message.as_ref().map(|m| {
            let mut view = m.view(t);
            view.text = page.lockout.fill(&view.text);
            view
        }),
        lockout_hint: page.lockout.fill(t.otp_lockout_hint),
        show_form: !matches!(page.message, Some(OtpMessage::Locked { .. })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lang: Lang) -> OtpPage<'static> {
        OtpPage {
            lang,
            csrf: "csrf-otp-9",
            display_name: "王小明",
            message: None,
            lockout: LockoutRule::default(),
        }
    }

    fn message_box(html: &str) -> &str {
        let start = html.find("<div id=\"message\"").expect("message box");
        let end = start + html[start..].find("</div>").expect("end of box");
        &html[start..end]
    }

    #[test]
    fn the_otp_hint_and_suspension_state_the_configured_rule() {
        let html = render_otp(&OtpPage {
            lockout: LockoutRule {
                failures: 4,
                minutes: 10,
            },
            message: Some(OtpMessage::Locked {
                until: "09:10".into(),
            }),
            ..page(Lang::ZhTw)
        });
        assert!(
            html.contains(
                "OTP 密碼連續輸入 4 次錯誤，將暫時停用帳號，需等待 10 分鐘後方可再次登入。"
            )
        );
        assert!(html.contains("OTP 密碼連續輸入錯誤 4 次，帳號已暫時停用，請於 09:10 後再試。"));
    }

    #[test]
    fn zh_tw_otp_page() {
        let html = render_otp(&page(Lang::ZhTw));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<html lang=\"zh-Hant-TW\">"));
        assert!(html.contains("<title>OTP 驗證 · 門神 Menshen</title>"));
        assert!(html.contains("<h1 id=\"otp-title\">OTP 驗證</h1>"));
        assert!(html.contains("請開啟驗證 APP，輸入顯示的 6 位數密碼"));
        assert!(html.contains("王小明"));
        assert!(html.contains(
            "<form id=\"otp-form\" class=\"code-form\" method=\"post\" action=\"/.menshen/otp\""
        ));
        assert_eq!(
            html.matches("<input type=\"hidden\" name=\"csrf\" value=\"csrf-otp-9\">")
                .count(),
            2
        );
        assert!(html.contains(
            "<input id=\"code\" class=\"code-input\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]*\" maxlength=\"7\" spellcheck=\"false\" required autofocus>"
        ));
        assert!(html.contains("<label for=\"code\">"));
        assert!(html.contains(
            "<button id=\"otp-submit\" class=\"button button-primary button-block\" type=\"submit\">驗證</button>"
        ));
        assert!(html.contains("OTP 密碼連續輸入 3 次錯誤"));
        assert!(html.contains("15 分鐘"));
        assert!(html.contains("method=\"post\" action=\"/.menshen/logout\""));
        assert!(html.contains(">← 返回登入首頁</button>"));
        assert!(html.contains("id=\"back-to-login\""));
        assert!(!html.contains("id=\"message\""));
        assert!(!html.contains("<script"));
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
        assert!(!html.contains(" onclick="));
    }

    #[test]
    fn english_otp_page() {
        let html = render_otp(&page(Lang::En));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains(">OTP verification</h1>"));
        assert!(html.contains("enter the 6-digit code"));
        assert!(html.contains(">Verify</button>"));
        assert!(html.contains(">← Back to the sign-in page</button>"));
        assert!(!html.contains("驗證</button>"));
    }

    #[test]
    fn messages() {
        let locked = OtpMessage::Locked {
            until: "14:35".to_owned(),
        };
        for (message, class, zh, en) in [
            (
                OtpMessage::WrongCode,
                "message-error",
                "OTP 密碼錯誤".to_owned(),
                "Wrong code".to_owned(),
            ),
            (
                locked.clone(),
                "message-error",
                "帳號已暫時停用，請於 14:35 後再試".to_owned(),
                "try again after 14:35.".to_owned(),
            ),
            (
                OtpMessage::Expired,
                "message-warning",
                "已逾時".to_owned(),
                "has expired".to_owned(),
            ),
        ] {
            for (lang, text) in [(Lang::ZhTw, &zh), (Lang::En, &en)] {
                let html = render_otp(&OtpPage {
                    message: Some(message.clone()),
                    ..page(lang)
                });
                let boxed = message_box(&html);
                assert!(boxed.contains("role=\"alert\""), "{boxed}");
                assert!(boxed.contains(class), "{boxed}");
                assert!(
                    boxed.contains(text.as_str()),
                    "{message:?} {lang:?}: {boxed}"
                );
                // While locked only the way back is offered.
                assert_eq!(html.contains("id=\"otp-form\""), message != locked);
                assert!(html.contains("id=\"back-to-login\""));
            }
        }
    }

    #[test]
    fn escaped() {
        let html = render_otp(&OtpPage {
            display_name: "<script>alert(1)</script>",
            csrf: "\"><script>",
            message: Some(OtpMessage::Locked {
                until: "<b>soon</b>".to_owned(),
            }),
            ..page(Lang::ZhTw)
        });
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>soon"));
        assert!(html.contains("&#60;b&#62;soon&#60;/b&#62;"));
    }
}
