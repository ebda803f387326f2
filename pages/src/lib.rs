//! Menshen's own pages: the login page, the OTP step of signing in, the binding pages (choose a
//! second factor, set up OTP), the account pages (profile, activity, sign-in settings), error
//! pages (including OpenID Connect sign-in failures), the signed-in landing page, the demo legacy
//! app, their translations (zh-TW first, English second) and the embedded static assets.
//!
//! Every page renders from a plain struct into a complete HTML5 document. User-supplied values
//! are HTML-escaped by askama; no page contains inline scripts or inline styles, so all of them
//! work under Menshen's strict Content-Security-Policy.

mod account;
mod assets;
mod bind;
mod certificate;
mod demo;
mod error;
mod lang;
mod login;
mod mobile;
mod oidc_error;
mod otp;
mod password;
mod reauth;
mod signed_in;
mod texts;

pub use account::{
    AccountMessage, AccountPage, AccountTab, ActivityRow, CertificateHolder, ProviderRow,
    SignInRow, browser_summary, render_account,
};
pub use assets::{StaticAsset, static_asset};
pub use bind::{
    BindOtpMessage, BindOtpPage, BindPage, CertificateRow, render_bind, render_bind_otp,
};
pub use certificate::{
    CERTIFICATE_EN, CERTIFICATE_ZH_TW, CertificatePage, CertificatePurpose, CertificateTexts,
    DEFAULT_DOWNLOAD_URL, MOICA_FAQ, MOICA_SITE, render_certificate,
};
pub use demo::{DemoApp, DemoAppPage, render_demo_app};
pub use error::{ErrorKind, ErrorPage, render_error};
pub use lang::Lang;
pub use login::{CaptchaField, LoginMessage, LoginPage, OtherMethod, render_login};
pub use mobile::{
    FIDO_SITE, MOBILE_EN, MOBILE_ZH_TW, MobileFailure, MobileMode, MobilePage, MobilePurpose,
    MobileTexts, MobileWaitPage, render_mobile, render_mobile_wait,
};
pub use oidc_error::{OidcError, OidcErrorPage, render_oidc_error};
pub use otp::{OtpMessage, OtpPage, render_otp};
pub use password::{
    ForgotCaptcha, ForgotPage, HelpPage, MailContext, MailText, NoticeMail, NoticePage,
    PASSWORD_EN, PASSWORD_ZH_TW, PasswordFormKind, PasswordFormPage, PasswordNotice, PasswordTexts,
    changed_mail, notice_mail, password_rule_text, render_forgot, render_help,
    render_password_form, render_password_notice, reset_mail,
};
pub use reauth::{CODE_FIELD, PASSWORD_FIELD, ReauthField};
pub use signed_in::{SignedInPage, SystemLink, render_signed_in};
pub use texts::{EN, Texts, ZH_TW};

/// Path prefix under which [`static_asset`] names are served.
pub const STATIC_PREFIX: &str = "/.menshen/static/";

/// Returned when a template fails to render (it writes into a `String`, so in practice never).
const FALLBACK_HTML: &str = "<!DOCTYPE html>\n<html lang=\"zh-Hant-TW\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><title>門神 Menshen</title></head>\
<body><h1>系統發生錯誤 / Something went wrong</h1>\
<p>請稍後再試。 / Please try again later.</p><p><a href=\"/\">返回首頁 / Home</a></p></body></html>\n";

/// A message box: its CSS class (`message-error`, `message-warning`, `message-info`,
/// `message-success`) and its plain text (escaped by the template).
struct MessageView {
    class: &'static str,
    text: String,
}

impl MessageView {
    fn error(text: &str) -> MessageView {
        MessageView {
            class: "message-error",
            text: text.to_owned(),
        }
    }

    fn warning(text: &str) -> MessageView {
        MessageView {
            class: "message-warning",
            text: text.to_owned(),
        }
    }

    fn info(text: &str) -> MessageView {
        MessageView {
            class: "message-info",
            text: text.to_owned(),
        }
    }

    fn success(text: &str) -> MessageView {
        MessageView {
            class: "message-success",
            text: text.to_owned(),
        }
    }
}

/// The suspension rule the login and OTP pages state: how many failures in a row suspend
/// an account, and for how many minutes (from `[lockout]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    pub failures: u32,
    pub minutes: u64,
}

impl Default for LockoutRule {
    /// The manual's rule: 3 failures, 15 minutes.
    fn default() -> Self {
        LockoutRule {
            failures: 3,
            minutes: 15,
        }
    }
}

impl LockoutRule {
    /// `text` with `{n}` and `{minutes}` filled in.
    fn fill(self, text: &str) -> String {
        text.replace("{n}", &self.failures.to_string())
            .replace("{minutes}", &self.minutes.to_string())
    }
}

/// The line under the product name: the protected system's name, or the tagline without one.
fn subtitle<'a>(site_name: &'a str, t: &'static Texts) -> &'a str {
    if site_name.is_empty() {
        t.tagline
    } else {
        site_name
    }
}

/// Renders a template, falling back to a minimal static page on the (practically impossible)
/// render error.
fn render_or_fallback<T: askama::Template>(template: &T) -> String {
    template
        .render()
        .unwrap_or_else(|_| FALLBACK_HTML.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_is_a_complete_document() {
        assert!(FALLBACK_HTML.starts_with("<!DOCTYPE html>"));
        assert!(FALLBACK_HTML.contains("<meta charset=\"utf-8\">"));
        assert!(FALLBACK_HTML.trim_end().ends_with("</html>"));
    }
}
