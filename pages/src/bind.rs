//! The binding pages: the choice of a second sign-in method (`GET /.menshen/bind`, forced after
//! the first password sign-in of an account with nothing bound) and the OTP setup page
//! (`GET /.menshen/bind/otp`) with its QR code.

use crate::lang::Lang;
use crate::reauth::{ReauthField, ReauthView};
use crate::texts::Texts;
use crate::{MessageView, render_or_fallback};

/// Everything the binding page (授權方式 | 綁定 | 授權狀態) shows.
#[derive(Debug, Clone, Copy)]
pub struct BindPage<'a> {
    pub lang: Lang,
    pub display_name: &'a str,
    /// Value of the logout form's hidden `csrf` field.
    pub csrf: &'a str,
    /// Whether OTP is already bound (✓ 已綁定, no bind button) or not (× 未綁定).
    pub otp_bound: bool,
    pub certificate: CertificateRow<'a>,
    /// The mobile citizen certificate row; `None` when the method is not configured.
    pub mobile: Option<CertificateRow<'a>>,
    /// `true`: the forced first binding (the notes are shown prominently); `false`: reached
    /// from a full session to add a method (a link back to `/.menshen/` is added).
    pub forced: bool,
}

/// What the citizen certificate (自然人憑證) row of the binding table offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRow<'a> {
    /// School administrator (AA) accounts: OTP only; the row says so and has no button.
    NotForAa,
    /// Staff accounts where the operator has not configured certificates (`[certificate]`
    /// absent): a disabled button and a note that this system does not offer it.
    NotYetAvailable,
    /// Certificate binding is offered at `href`.
    Available { href: &'a str },
    /// A certificate is already bound (✓ 已綁定, no button).
    Bound,
    /// A certificate is bound and may be replaced (a renewed card) at `href`: the account
    /// settings show 重新綁定; the binding page shows it as [`CertificateRow::Bound`].
    Rebindable { href: &'a str },
}

/// What the templates (binding page, account settings tab) need to know about the
/// certificate row.
pub(crate) struct CertificateView<'a> {
    pub(crate) not_for_aa: bool,
    pub(crate) bound: bool,
    /// The bind link (the re-bind link when bound); `None` with `!not_for_aa && !bound`
    /// means "not offered here".
    pub(crate) href: Option<&'a str>,
}

impl<'a> CertificateView<'a> {
    pub(crate) fn new(row: CertificateRow<'a>) -> CertificateView<'a> {
        CertificateView {
            not_for_aa: row == CertificateRow::NotForAa,
            bound: matches!(
                row,
                CertificateRow::Bound | CertificateRow::Rebindable { .. }
            ),
            href: match row {
                CertificateRow::Available { href } | CertificateRow::Rebindable { href } => {
                    Some(href)
                }
                _ => None,
            },
        }
    }
}

#[derive(askama::Template)]
#[template(path = "bind.html")]
struct BindTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    page: &'a BindPage<'a>,
    cert: CertificateView<'a>,
    m: &'static crate::mobile::MobileTexts,
    mobile: Option<CertificateView<'a>>,
}

/// Renders the binding page.
pub fn render_bind(page: &BindPage) -> String {
    let t = page.lang.texts();
    let cert = CertificateView::new(page.certificate);
    render_or_fallback(&BindTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        page,
        cert,
        m: page.lang.mobile_texts(),
        mobile: page.mobile.map(CertificateView::new),
    })
}

/// Everything the OTP setup page (OTP 驗證綁定) shows.
#[derive(Debug, Clone)]
pub struct BindOtpPage<'a> {
    pub lang: Lang,
    /// Value of the hidden `csrf` field.
    pub csrf: &'a str,
    /// Value of the hidden `bind_id` field (identifies the secret shown on this page view).
    pub bind_id: &'a str,
    /// The QR code as a `data:` URI (allowed by `img-src 'self' data:`).
    pub qr_data_uri: &'a str,
    /// The secret in groups (e.g. "ABCD EFGH …") for manual entry.
    pub secret_grouped: &'a str,
    pub issuer: &'a str,
    pub account: &'a str,
    pub message: Option<BindOtpMessage>,
    /// The proof asked for with the code: none on the forced first binding, else the
    /// current password (or a code of the OTP bound now).
    pub reauth: ReauthField,
}

/// The message shown on the OTP setup page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOtpMessage {
    /// The code did not match the secret shown.
    WrongCode,
    /// The QR code was for an earlier page view; a new one is shown.
    Expired,
    /// The current password (or code) was not given.
    ReauthMissing,
    /// The current password (or code) was wrong (counted like a wrong password).
    ReauthWrong,
    /// The account is suspended until then (Taiwan time, e.g. "10:42").
    ReauthLocked { until: String },
    /// The account has nothing to prove itself with here.
    ReauthUnavailable,
}

impl BindOtpMessage {
    fn view(&self, t: &'static Texts) -> MessageView {
        match self {
            BindOtpMessage::WrongCode => MessageView::error(t.msg_bind_wrong_code),
            BindOtpMessage::Expired => MessageView::warning(t.msg_bind_expired),
            BindOtpMessage::ReauthMissing => MessageView::error(t.msg_reauth_missing),
            BindOtpMessage::ReauthWrong => MessageView::error(t.msg_reauth_wrong),
            BindOtpMessage::ReauthLocked { until } => {
                MessageView::error(&t.msg_reauth_locked.replace("{until}", until))
            }
            BindOtpMessage::ReauthUnavailable => MessageView::error(t.msg_reauth_unavailable),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "bind_otp.html")]
struct BindOtpTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    page: &'a BindOtpPage<'a>,
    message: Option<MessageView>,
    /// Focus the code field only after a wrong code: on a first view a phone's on-screen
    /// keyboard would cover the QR code.
    focus_code: bool,
    reauth: Option<ReauthView>,
    reauth_id: &'static str,
}

/// Renders the OTP setup page.
pub fn render_bind_otp(page: &BindOtpPage) -> String {
    let t = page.lang.texts();
    render_or_fallback(&BindOtpTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        page,
        message: page.message.as_ref().map(|m| m.view(t)),
        focus_code: page.message == Some(BindOtpMessage::WrongCode),
        reauth: page.reauth.view(t),
        reauth_id: "current-proof",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(lang: Lang) -> BindPage<'static> {
        BindPage {
            lang,
            display_name: "王小明",
            csrf: "csrf-bind-1",
            otp_bound: false,
            certificate: CertificateRow::NotYetAvailable,
            mobile: None,
            forced: true,
        }
    }

    #[test]
    fn the_mobile_row_shows_only_where_configured() {
        assert!(!render_bind(&bind(Lang::ZhTw)).contains("row-mobile"));
        let offered = render_bind(&BindPage {
            mobile: Some(CertificateRow::Available {
                href: "/.menshen/bind/mobile",
            }),
            ..bind(Lang::ZhTw)
        });
        assert!(offered.contains(r#"<tr id="row-mobile">"#), "{offered}");
        assert!(
            offered.contains(r#"<a id="bind-mobile" class="button button-secondary" href="/.menshen/bind/mobile">行動自然人憑證綁定</a>"#),
            "{offered}"
        );
        let aa = render_bind(&BindPage {
            mobile: Some(CertificateRow::NotForAa),
            ..bind(Lang::ZhTw)
        });
        assert!(aa.contains(r#"id="mobile-note""#) && !aa.contains("bind-mobile"));
        let bound = render_bind(&BindPage {
            mobile: Some(CertificateRow::Bound),
            ..bind(Lang::En)
        });
        assert!(bound.contains(r#"id="mobile-status" class="status status-bound""#));
    }

    fn bind_otp(lang: Lang) -> BindOtpPage<'static> {
        BindOtpPage {
            lang,
            csrf: "csrf-otp-2",
            bind_id: "bind-77",
            qr_data_uri: "data:image/png;base64,iVBORw0KGgo+/=",
            secret_grouped: "JBSW Y3DP EHPK 3PXP",
            issuer: "門神 屏東縣學籍",
            account: "wang01",
            message: None,
            reauth: ReauthField::None,
        }
    }

    /// The `<tr id="row-…">` element with the given id.
    fn row<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("<tr id=\"{id}\">"))
            .expect("row present");
        let end = start + html[start..].find("</tr>").expect("row end");
        &html[start..end]
    }

    fn assert_no_inline_code(html: &str) {
        assert!(!html.contains("<script"));
        assert!(!html.contains("<style"));
        assert!(!html.contains("style="));
        for handler in [" onclick=", " onload=", " onerror=", " onsubmit="] {
            assert!(!html.contains(handler), "no inline event handlers");
        }
    }

    #[test]
    fn zh_tw_forced_bind_page() {
        let html = render_bind(&bind(Lang::ZhTw));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<html lang=\"zh-Hant-TW\">"));
        assert!(html.contains("<h1 id=\"bind-title\">雙因子認證綁定</h1>"));
        assert!(html.contains("<span id=\"display-name\" class=\"account-name\">王小明</span>"));
        assert!(html.contains("尚未綁定任何驗證方式"));
        // The three notes, in order, prominent.
        assert!(html.contains("class=\"bind-notes bind-notes-forced\""));
        let notes = [
            "<li>請務必選擇一種驗證方式做綁定</li>",
            "<li>注意：OTP 驗證綁定之 QR code 僅供該次頁面掃描使用</li>",
            "<li>綁定後，請使用已綁定方式重新登入</li>",
        ];
        let positions: Vec<usize> = notes
            .iter()
            .map(|n| html.find(n).expect("note present"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        // The notes come before the table.
        assert!(positions[2] < html.find("id=\"bind-methods\"").expect("table"));
        // Table header.
        assert!(html.contains(
            "<th scope=\"col\">授權方式</th><th scope=\"col\">綁定</th><th scope=\"col\">授權狀態</th>"
        ));
        // OTP row: bind button and ×.
        let otp = row(&html, "row-otp");
        assert!(otp.contains("<th scope=\"row\">OTP 驗證</th>"));
        assert!(otp.contains(
            "<a id=\"bind-otp\" class=\"button button-primary\" href=\"/.menshen/bind/otp\">OTP 驗證綁定</a>"
        ));
        assert!(otp.contains("id=\"otp-status\""));
        assert!(otp.contains("×</span> 未綁定"));
        // Certificate row: coming soon, disabled button.
        let cert = row(&html, "row-certificate");
        assert!(cert.contains("<th scope=\"row\">自然人憑證</th>"));
        assert!(cert.contains("id=\"bind-certificate\""));
        assert!(cert.contains("type=\"button\" disabled"));
        assert!(cert.contains(">自然人憑證綁定</button>"));
        assert!(cert.contains("本系統未開放自然人憑證綁定"));
        assert!(!cert.contains("href="));
        // Back to login: a POST logout form with the csrf token.
        assert!(html.contains("method=\"post\" action=\"/.menshen/logout\""));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-bind-1\">"));
        assert!(html.contains(
            "<button id=\"back-to-login\" class=\"button button-link\" type=\"submit\">← 返回登入首頁</button>"
        ));
        // Forced: no way around the binding.
        assert!(!html.contains("id=\"back-to-account\""));
        assert_no_inline_code(&html);
    }

    #[test]
    fn english_bind_page() {
        let html = render_bind(&BindPage {
            otp_bound: true,
            certificate: CertificateRow::Available {
                href: "/.menshen/bind/certificate",
            },
            forced: false,
            ..bind(Lang::En)
        });
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains(">Two-factor setup</h1>"));
        assert!(html.contains("<th scope=\"col\">Method</th>"));
        assert!(html.contains("<th scope=\"col\">Status</th>"));
        assert!(html.contains("You must set up at least one method."));
        assert!(html.contains("can only be scanned on the page view that shows it"));
        assert!(html.contains("sign in again using the method you set up"));
        assert!(html.contains("class=\"bind-notes\""));
        assert!(html.contains("set up another sign-in method"));
        let otp = row(&html, "row-otp");
        assert!(otp.contains("✓</span> Done"));
        assert!(!otp.contains("id=\"bind-otp\""));
        let cert = row(&html, "row-certificate");
        assert!(cert.contains(
            "<a id=\"bind-certificate\" class=\"button button-secondary\" href=\"/.menshen/bind/certificate\">Set up certificate</a>"
        ));
        assert!(cert.contains("×</span> Not set up"));
        // Signed in: back to the account page, never a logout disguised as "back".
        assert!(!html.contains("id=\"back-to-login\""));
        assert!(html.contains(
            "id=\"back-to-account\" class=\"button button-secondary\" href=\"/.menshen/account?tab=settings\""
        ));
        assert!(!html.contains("授權方式"));
    }

    #[test]
    fn otp_bound_shows_check() {
        let html = render_bind(&BindPage {
            otp_bound: true,
            ..bind(Lang::ZhTw)
        });
        let otp = row(&html, "row-otp");
        assert!(otp.contains(
            "<td id=\"otp-status\" class=\"status status-bound\"><span class=\"status-mark\" aria-hidden=\"true\">✓</span> 已綁定</td>"
        ));
        assert!(!html.contains("id=\"bind-otp\""));
        assert!(!html.contains("href=\"/.menshen/bind/otp\""));
    }

    #[test]
    fn aa_accounts_get_no_certificate_button() {
        for (lang, note) in [
            (Lang::ZhTw, "學校管理者(AA帳號)僅提供 OTP 驗證綁定"),
            (
                Lang::En,
                "School administrator (AA) accounts can only use OTP.",
            ),
        ] {
            let html = render_bind(&BindPage {
                certificate: CertificateRow::NotForAa,
                ..bind(lang)
            });
            let cert = row(&html, "row-certificate");
            assert!(cert.contains(&format!(
                "<p id=\"certificate-note\" class=\"cell-note\">{note}</p>"
            )));
            assert!(!html.contains("bind-certificate"));
            assert!(!cert.contains("<button"));
            assert!(!cert.contains("<a "));
            assert!(cert.contains("id=\"certificate-status\" class=\"status status-na\""));
            // OTP binding is still offered.
            assert!(html.contains("id=\"bind-otp\""));
        }
    }

    #[test]
    fn certificate_bound_row() {
        let html = render_bind(&BindPage {
            certificate: CertificateRow::Bound,
            ..bind(Lang::ZhTw)
        });
        let cert = row(&html, "row-certificate");
        assert!(cert.contains("✓</span> 已綁定"));
        assert!(!cert.contains("bind-certificate"));
    }

    #[test]
    fn bind_page_escapes() {
        let html = render_bind(&BindPage {
            display_name: "<script>alert(1)</script>",
            csrf: "\"><script>",
            certificate: CertificateRow::Available {
                href: "\"><script>x</script>",
            },
            ..bind(Lang::ZhTw)
        });
        assert!(!html.contains("<script"));
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(html.contains("value=\"&#34;&#62;&#60;script&#62;\""));
    }

    #[test]
    fn zh_tw_bind_otp_page() {
        let html = render_bind_otp(&bind_otp(Lang::ZhTw));
        assert!(html.contains("<html lang=\"zh-Hant-TW\">"));
        assert!(html.contains("<h1 id=\"bind-otp-title\">OTP 驗證綁定</h1>"));
        assert!(html.contains("Google Authenticator"));
        assert!(html.contains("App Store"));
        assert!(html.contains("Google Play"));
        assert!(html.contains("僅供本次頁面掃描使用"));
        assert!(html.contains(
            "<img id=\"otp-qr\" class=\"otp-qr\" src=\"data:image/png;base64,iVBORw0KGgo+/=\" alt=\"OTP 驗證綁定 QR code\""
        ));
        assert!(
            html.contains(
                "<code id=\"otp-secret\" class=\"otp-secret\">JBSW Y3DP EHPK 3PXP</code>"
            )
        );
        assert!(html.contains("<dd id=\"otp-issuer\">門神 屏東縣學籍</dd>"));
        assert!(html.contains("<dd id=\"otp-account\">wang01</dd>"));
        assert!(html.contains(
            "<form id=\"bind-otp-form\" class=\"code-form\" method=\"post\" action=\"/.menshen/bind/otp\""
        ));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf-otp-2\">"));
        assert!(html.contains("<input type=\"hidden\" name=\"bind_id\" value=\"bind-77\">"));
        assert!(html.contains("<label for=\"code\">請輸入APP產生的密碼</label>"));
        assert!(html.contains(
            "<input id=\"code\" class=\"code-input\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]*\" maxlength=\"7\""
        ));
        assert!(html.contains(
            "<button id=\"bind-submit\" class=\"button button-primary\" type=\"submit\">綁定</button>"
        ));
        assert!(html.contains("href=\"/.menshen/bind\">回綁定頁面</a>"));
        assert!(!html.contains("id=\"message\""));
        // No autofocus on a first view (the keyboard would cover the QR code on a phone).
        assert!(!html.contains("autofocus"));
        assert_no_inline_code(&html);
    }

    #[test]
    fn english_bind_otp_page() {
        let html = render_bind_otp(&bind_otp(Lang::En));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains(">Set up OTP</h1>"));
        assert!(html.contains("App Store"));
        assert!(html.contains("Google Play"));
        assert!(html.contains("Google Authenticator"));
        assert!(html.contains("only valid for this page view"));
        assert!(html.contains("<label for=\"code\">Enter the code the app shows</label>"));
        assert!(html.contains(">Set up</button>"));
        assert!(html.contains(">Back to the setup page</a>"));
        assert!(!html.contains("請輸入APP產生的密碼"));
    }

    #[test]
    fn bind_otp_messages() {
        for (message, class, zh, en) in [
            (
                BindOtpMessage::WrongCode,
                "message-error",
                "密碼錯誤",
                "Wrong code",
            ),
            (
                BindOtpMessage::Expired,
                "message-warning",
                "已產生新的 QR code",
                "shows a new one",
            ),
        ] {
            for (lang, text) in [(Lang::ZhTw, zh), (Lang::En, en)] {
                let html = render_bind_otp(&BindOtpPage {
                    message: Some(message.clone()),
                    ..bind_otp(lang)
                });
                let start = html.find("<div id=\"message\"").expect("message box");
                let end = start + html[start..].find("</div>").expect("end of box");
                let boxed = &html[start..end];
                assert!(boxed.contains("role=\"alert\""), "{boxed}");
                assert!(boxed.contains(class), "{boxed}");
                assert!(boxed.contains(text), "{message:?} {lang:?}: {boxed}");
                assert_eq!(
                    html.contains("required autofocus>"),
                    message == BindOtpMessage::WrongCode
                );
            }
        }
    }

    #[test]
    fn bind_otp_escapes() {
        let html = render_bind_otp(&BindOtpPage {
            csrf: "\"><script>",
            bind_id: "\"><b>",
            qr_data_uri: "\"><script>alert(1)</script>",
            secret_grouped: "<i>secret</i>",
            issuer: "<script>issuer</script>",
            account: "a&b",
            ..bind_otp(Lang::ZhTw)
        });
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<i>secret"));
        assert!(html.contains("<dd id=\"otp-account\">a&#38;b</dd>"));
        assert!(html.contains("name=\"bind_id\" value=\"&#34;&#62;&#60;b&#62;\""));
    }
}
