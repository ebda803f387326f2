//! The signed-in landing page (`GET /.menshen/`): who is signed in, a link into the protected
//! system and the logout button.

use crate::lang::Lang;
use crate::render_or_fallback;
use crate::texts::Texts;

/// Everything the signed-in page shows.
#[derive(Debug, Clone, Copy)]
pub struct SignedInPage<'a> {
    pub lang: Lang,
    pub display_name: &'a str,
    pub login_name: &'a str,
    /// Value of the logout form's hidden `csrf` field.
    pub csrf: &'a str,
}

#[derive(askama::Template)]
#[template(path = "signed_in.html")]
struct SignedInTemplate<'a> {
    html_lang: &'static str,
    t: &'static Texts,
    subtitle: &'static str,
    page: &'a SignedInPage<'a>,
}

/// Renders the signed-in page.
pub fn render_signed_in(page: &SignedInPage) -> String {
    let t = page.lang.texts();
    render_or_fallback(&SignedInTemplate {
        html_lang: page.lang.html_lang(),
        t,
        subtitle: t.tagline,
        page,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(lang: Lang) -> SignedInPage<'static> {
        SignedInPage {
            lang,
            display_name: "王小明",
            login_name: "wang01",
            csrf: "tok-456",
        }
    }

    #[test]
    fn zh_tw() {
        let html = render_signed_in(&page(Lang::ZhTw));
        assert!(html.contains("<html lang=\"zh-Hant-TW\">"));
        assert!(html.contains("已登入"));
        assert!(html.contains("王小明"));
        assert!(html.contains("wang01"));
        assert!(html.contains("method=\"post\" action=\"/.menshen/logout\""));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"tok-456\">"));
        assert!(html.contains("id=\"logout-submit\""));
        assert!(html.contains(">登出</button>"));
        assert!(html.contains("href=\"/\">前往系統</a>"));
    }

    #[test]
    fn english() {
        let html = render_signed_in(&page(Lang::En));
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("Signed in"));
        assert!(html.contains(">Sign out</button>"));
        assert!(html.contains(">Go to the system</a>"));
    }

    #[test]
    fn escaped() {
        let html = render_signed_in(&SignedInPage {
            display_name: "<script>x</script>",
            login_name: "<img src=x>",
            csrf: "\"><script>",
            ..page(Lang::ZhTw)
        });
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img src=x"));
    }
}
