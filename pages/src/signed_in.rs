//! The signed-in landing page (`GET /.menshen/`): who is signed in, a link into the protected
//! system (with single sign-on, the list of systems) and the logout button. The same page,
//! in its confirmation form, is `GET /.menshen/logout`.

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
    /// Single sign-on: the systems to go to from the portal (else one link to `/`).
    pub systems: &'a [SystemLink<'a>],
    /// The page asks to confirm the logout (`GET /.menshen/logout`).
    pub confirm_logout: bool,
    /// The logout ends the sign-in on every system (single sign-on).
    pub everywhere: bool,
}

/// One protected system, linked from the portal.
#[derive(Debug, Clone, Copy)]
pub struct SystemLink<'a> {
    pub name: &'a str,
    pub href: &'a str,
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
            systems: &[],
            confirm_logout: false,
            everywhere: false,
        }
    }

    #[test]
    fn portal_lists_the_systems_and_logs_out_everywhere() {
        let systems = [
            SystemLink {
                name: "registry",
                href: "https://registry.school.example/",
            },
            SystemLink {
                name: "hr",
                href: "https://hr.school.example/",
            },
        ];
        let html = render_signed_in(&SignedInPage {
            systems: &systems,
            everywhere: true,
            ..page(Lang::ZhTw)
        });
        assert!(html.contains("可使用的系統"));
        assert!(html.contains("href=\"https://registry.school.example/\">registry</a>"));
        assert!(html.contains("href=\"https://hr.school.example/\">hr</a>"));
        assert!(!html.contains("id=\"go-to-system\""));
        assert!(html.contains(">登出所有系統</button>"));
    }

    #[test]
    fn logout_confirmation() {
        let html = render_signed_in(&SignedInPage {
            confirm_logout: true,
            everywhere: true,
            ..page(Lang::ZhTw)
        });
        assert!(html.contains("<h1 id=\"signed-in-title\">登出</h1>"));
        assert!(html.contains("本次登入的所有系統都需要重新登入"));
        assert!(html.contains("method=\"post\" action=\"/.menshen/logout\""));
        assert!(html.contains(">登出所有系統</button>"));
        assert!(html.contains(
            "<a id=\"logout-cancel\" class=\"button button-secondary\" href=\"/\">前往系統</a>"
        ));
        let en = render_signed_in(&SignedInPage {
            confirm_logout: true,
            ..page(Lang::En)
        });
        assert!(en.contains("Do you want to sign out?"));
        assert!(en.contains(">Sign out</button>"));
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
