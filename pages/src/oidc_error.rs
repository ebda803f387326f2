//! The page shown when signing in (or binding) with an OpenID Connect provider fails, e.g. the
//! manual's "the Google account has never been bound to this system, so sign-in fails".

use crate::lang::Lang;
use crate::render_or_fallback;
use crate::texts::Texts;

/// Everything the OpenID Connect error page shows.
#[derive(Debug, Clone, Copy)]
pub struct OidcErrorPage<'a> {
    pub lang: Lang,
    /// The provider's label, e.g. "Google 帳號".
    pub provider_label: &'a str,
    pub kind: OidcError,
}

/// Why signing in with the provider failed; decides the HTTP status and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcError {
    /// The provider account is not bound to any account here (403): sign in another way first
    /// and bind it in 登入設定.
    NotBound,
    /// The user declined at the provider (403).
    Denied,
    /// The sign-in link expired or was already used (400).
    StateInvalid,
    /// The provider cannot be reached (502).
    ProviderDown,
    /// The provider's answer could not be verified (401).
    TokenInvalid,
    /// The bound account is disabled (403).
    AccountDisabled,
    /// The bound account has no OTP, so provider sign-in (provider + OTP) cannot continue (403).
    NoOtp,
    /// The bound account is suspended after wrong passwords or codes (403): a provider trusted
    /// alone must not get around the suspension.
    Locked,
}

impl OidcError {
    /// Every kind, for exhaustive tests and listings.
    pub const ALL: [OidcError; 8] = [
        OidcError::NotBound,
        OidcError::Denied,
        OidcError::StateInvalid,
        OidcError::ProviderDown,
        OidcError::TokenInvalid,
        OidcError::AccountDisabled,
        OidcError::NoOtp,
        OidcError::Locked,
    ];

    /// The HTTP status code for this kind.
    pub fn status(self) -> u16 {
        match self {
            OidcError::NotBound => 403,
            OidcError::Denied => 403,
            OidcError::StateInvalid => 400,
            OidcError::ProviderDown => 502,
            OidcError::TokenInvalid => 401,
            OidcError::AccountDisabled => 403,
            OidcError::NoOtp => 403,
            OidcError::Locked => 403,
        }
    }

    /// Title and explanation (with `{label}`) in the given translations.
    fn texts(self, t: &'static Texts) -> (&'static str, &'static str) {
        match self {
            OidcError::NotBound => (t.oidc_not_bound_title, t.oidc_not_bound_body),
            OidcError::Denied => (t.oidc_denied_title, t.oidc_denied_body),
            OidcError::StateInvalid => (t.oidc_state_invalid_title, t.oidc_state_invalid_body),
            OidcError::ProviderDown => (t.oidc_provider_down_title, t.oidc_provider_down_body),
            OidcError::TokenInvalid => (t.oidc_token_invalid_title, t.oidc_token_invalid_body),
            OidcError::AccountDisabled => {
                (t.oidc_account_disabled_title, t.oidc_account_disabled_body)
            }
            OidcError::NoOtp => (t.oidc_no_otp_title, t.oidc_no_otp_body),
            OidcError::Locked => (t.oidc_locked_title, t.oidc_locked_body),
        }
    }

    /// The steps listed under the explanation (with `{label}`); only for [`OidcError::NotBound`].
    fn steps(self, t: &'static Texts) -> Vec<&'static str> {
        match self {
            OidcError::NotBound => vec![
                t.oidc_not_bound_step_login,
                t.oidc_not_bound_step_settings,
                t.oidc_not_bound_step_bind,
            ],
            _ => Vec::new(),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "oidc_error.html")]
struct OidcErrorTemplate {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    status: u16,
    title: String,
    body: String,
    steps: Vec<String>,
}

/// Renders the OpenID Connect error page (the caller sets the status from
/// [`OidcError::status`]).
pub fn render_oidc_error(page: &OidcErrorPage) -> String {
    let t = page.lang.texts();
    let label = page.provider_label.trim();
    let fill = |text: &str| text.replace("{label}", label);
    let (title, body) = page.kind.texts(t);
    render_or_fallback(&OidcErrorTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        status: page.kind.status(),
        title: fill(title),
        body: fill(body),
        steps: page.kind.steps(t).into_iter().map(fill).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(lang: Lang, kind: OidcError) -> String {
        render_oidc_error(&OidcErrorPage {
            lang,
            provider_label: "Google 帳號",
            kind,
        })
    }

    #[test]
    fn statuses() {
        let expected = [
            (OidcError::NotBound, 403),
            (OidcError::Denied, 403),
            (OidcError::StateInvalid, 400),
            (OidcError::ProviderDown, 502),
            (OidcError::TokenInvalid, 401),
            (OidcError::AccountDisabled, 403),
            (OidcError::NoOtp, 403),
            (OidcError::Locked, 403),
        ];
        for (kind, status) in expected {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
        assert_eq!(OidcError::ALL.len(), expected.len());
        for (i, a) in OidcError::ALL.iter().enumerate() {
            for b in &OidcError::ALL[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn every_kind_renders_in_both_languages() {
        for kind in OidcError::ALL {
            let zh = render(Lang::ZhTw, kind);
            let en = render(Lang::En, kind);
            let (zh_title, zh_body) = kind.texts(&crate::ZH_TW);
            let (en_title, en_body) = kind.texts(&crate::EN);
            assert_ne!(zh_title, en_title);
            assert!(zh.contains("<html lang=\"zh-Hant-TW\">"));
            assert!(en.contains("<html lang=\"en\">"));
            let fill = |s: &str| s.replace("{label}", "Google 帳號");
            assert!(zh.contains(&format!("<h1 id=\"error-title\">{}</h1>", fill(zh_title))));
            assert!(en.contains(&format!("<h1 id=\"error-title\">{}</h1>", fill(en_title))));
            assert!(zh.contains(&fill(zh_body)));
            assert!(en.contains(&fill(en_body)));
            for html in [&zh, &en] {
                assert!(!html.contains("{label}"), "{kind:?}");
                assert!(html.contains(&kind.status().to_string()));
                assert!(html.contains("<a id=\"back-to-login\" class=\"button button-primary\" href=\"/.menshen/login\">"));
                assert!(!html.contains("<script"));
                assert!(!html.contains("style="));
                assert!(!html.contains("<form"));
            }
            assert!(zh.contains(">← 返回登入首頁</a>"));
            assert!(en.contains(">← Back to the sign-in page</a>"));
            assert_eq!(
                zh.contains("id=\"error-steps\""),
                kind == OidcError::NotBound
            );
        }
    }

    #[test]
    fn not_bound_follows_the_manual() {
        let zh = render(Lang::ZhTw, OidcError::NotBound);
        assert!(zh.contains("<h1 id=\"error-title\">Google 帳號尚未綁定</h1>"));
        assert!(zh.contains("您登入的Google 帳號從未綁定於本系統，因此無法登入"));
        let steps = &zh[zh.find("id=\"error-steps\"").expect("steps")..];
        assert!(steps.contains("<li>使用【帳號密碼+OTP 驗證】或【自然人憑證登入】登入系統。</li>"));
        assert!(steps.contains("【個人資料管理】"));
        assert!(steps.contains("「登入設定」"));
        assert!(steps.contains("【Google 帳號+OTP 驗證】"));
        let en = render(Lang::En, OidcError::NotBound);
        assert!(en.contains("has never been linked to an account here"));
        assert!(en.contains("Sign-in settings"));
    }

    #[test]
    fn specific_wording() {
        assert!(render(Lang::ZhTw, OidcError::StateInvalid).contains("已逾時或已使用過"));
        assert!(render(Lang::En, OidcError::StateInvalid).contains("expired or was already used"));
        assert!(render(Lang::ZhTw, OidcError::ProviderDown).contains("無法連線至Google 帳號"));
        assert!(render(Lang::En, OidcError::Denied).contains("You cancelled the sign-in"));
        assert!(render(Lang::ZhTw, OidcError::NoOtp).contains("此帳號未綁定 OTP 驗證"));
        assert!(render(Lang::En, OidcError::NoOtp).contains("use another sign-in method"));
        assert!(render(Lang::ZhTw, OidcError::AccountDisabled).contains("已停用"));
        assert!(render(Lang::En, OidcError::TokenInvalid).contains("could not be verified"));
    }

    #[test]
    fn label_is_escaped() {
        for kind in OidcError::ALL {
            let html = render_oidc_error(&OidcErrorPage {
                lang: Lang::ZhTw,
                provider_label: "<script>alert(1)</script>&",
                kind,
            });
            assert!(!html.contains("<script"));
            assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;&#38;"));
        }
    }
}
