//! The demo legacy app's page: it stands in for the registry system and shows the identity
//! headers it received from the gateway, then every other request header.

use percent_encoding::percent_decode_str;

use crate::render_or_fallback;

/// What the demo legacy app shows.
#[derive(Debug, Clone, Copy)]
pub struct DemoAppPage<'a> {
    /// The request path (and query) the app received.
    pub path: &'a str,
    /// All request headers received, as (name, value).
    pub headers: &'a [(String, String)],
    /// Headers whose name starts with this prefix (case-insensitive), e.g. `"x-menshen-"`, are
    /// listed first, in their own table.
    pub identity_prefix: &'a str,
    /// Which demo system this is (the single sign-on demo runs two).
    pub app: DemoApp<'a>,
}

/// One of the demo's legacy systems: its name and a link to the other one.
#[derive(Debug, Clone, Copy)]
pub struct DemoApp<'a> {
    /// Name in Chinese, e.g. 示範學籍系統.
    pub name: &'a str,
    /// Name in English, e.g. "Demo registry".
    pub name_en: &'a str,
    /// The other demo system (name, absolute URL), when there is one.
    pub other: Option<(&'a str, &'a str)>,
}

impl DemoApp<'static> {
    /// The registry stand-in of the single-site demo.
    pub const REGISTRY: DemoApp<'static> = DemoApp {
        name: "示範學籍系統",
        name_en: "Demo legacy app",
        other: None,
    };
}

struct Row<'a> {
    /// Lower-case header name (the `data-header` attribute).
    key: String,
    name: &'a str,
    value: &'a str,
    /// Percent-decoded value, for the display-name header only.
    decoded: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "demo_app.html")]
struct DemoTemplate<'a> {
    app: DemoApp<'a>,
    path: &'a str,
    identity: Vec<Row<'a>>,
    others: Vec<Row<'a>>,
}

/// Renders the demo legacy app's page.
pub fn render_demo_app(page: &DemoAppPage) -> String {
    let prefix = page.identity_prefix.to_ascii_lowercase();
    let name_header = format!("{prefix}name");
    let mut identity = Vec::new();
    let mut others = Vec::new();
    for (name, value) in page.headers {
        let key = name.to_ascii_lowercase();
        let is_identity = !prefix.is_empty() && key.starts_with(&prefix);
        let decoded = (is_identity && key == name_header)
            .then(|| percent_decode_str(value).decode_utf8_lossy().into_owned());
        let row = Row {
            key,
            name,
            value,
            decoded,
        };
        if is_identity {
            identity.push(row);
        } else {
            others.push(row);
        }
    }
    render_or_fallback(&DemoTemplate {
        app: page.app,
        path: page.path,
        identity,
        others,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<(String, String)> {
        [
            ("Host", "registry.example.edu.tw"),
            ("X-Menshen-User", "wang01"),
            ("X-Menshen-Name", "%E7%8E%8B%E5%B0%8F%E6%98%8E"),
            ("x-menshen-roles", "teacher,registrar"),
            ("User-Agent", "<script>alert(1)</script>"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn identity_rows_first_and_decoded() {
        let headers = headers();
        let html = render_demo_app(&DemoAppPage {
            path: "/students?id=1&x=<b>",
            headers: &headers,
            identity_prefix: "x-menshen-",
            app: DemoApp::REGISTRY,
        });
        assert!(html.contains("<html lang=\"zh-Hant-TW\">"));
        assert!(html.contains("示範學籍系統"));
        assert!(html.contains("Demo legacy app"));
        assert!(html.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
        let identity = html.find("<table id=\"identity\"").expect("identity table");
        let others = html.find("<table id=\"headers\"").expect("headers table");
        assert!(identity < others);
        let identity_html = &html[identity..others];
        assert!(identity_html.contains(
            "<tr data-header=\"x-menshen-user\"><th scope=\"row\">X-Menshen-User</th><td class=\"value\">wang01</td>"
        ));
        assert!(identity_html.contains("data-header=\"x-menshen-roles\""));
        assert!(identity_html.contains(
            "<td class=\"value\">%E7%8E%8B%E5%B0%8F%E6%98%8E</td><td class=\"decoded\">王小明</td>"
        ));
        assert!(!identity_html.contains("user-agent"));
        let others_html = &html[others..];
        assert!(others_html.contains("data-header=\"host\""));
        assert!(others_html.contains("data-header=\"user-agent\""));
        assert!(!others_html.contains("x-menshen"));
        // Escaping of everything received.
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("/students?id=1&#38;x=&#60;b&#62;"));
        // No CSRF token here: link to the signed-in page instead of a logout form.
        assert!(html.contains("href=\"/.menshen/\""));
        assert!(!html.contains("<form"));
    }

    #[test]
    fn no_identity_headers() {
        let headers = vec![("Host".to_owned(), "x".to_owned())];
        let html = render_demo_app(&DemoAppPage {
            path: "/",
            headers: &headers,
            identity_prefix: "x-menshen-",
            app: DemoApp::REGISTRY,
        });
        assert!(html.contains("id=\"no-identity\""));
        assert!(html.contains("data-header=\"host\""));
    }

    #[test]
    fn invalid_percent_encoding_is_shown_lossily() {
        let headers = vec![("X-Menshen-Name".to_owned(), "%FF%zz".to_owned())];
        let html = render_demo_app(&DemoAppPage {
            path: "/",
            headers: &headers,
            identity_prefix: "X-Menshen-",
            app: DemoApp::REGISTRY,
        });
        assert!(
            html.contains("<td class=\"value\">%FF%zz</td><td class=\"decoded\">\u{FFFD}%zz</td>")
        );
    }

    #[test]
    fn a_second_system_links_to_the_first() {
        let html = render_demo_app(&DemoAppPage {
            path: "/",
            headers: &[],
            identity_prefix: "x-menshen-",
            app: DemoApp {
                name: "示範人事系統",
                name_en: "Demo HR system",
                other: Some(("示範學籍系統", "http://registry.localhost:8080/")),
            },
        });
        assert!(html.contains("<title>示範人事系統 Demo HR system</title>"));
        assert!(html.contains(
            "<a id=\"other-system\" href=\"http://registry.localhost:8080/\">示範學籍系統</a>"
        ));
        assert!(html.contains("id=\"demo-logout\" href=\"/.menshen/logout\""));
    }
}
