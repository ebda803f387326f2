//! Static assets embedded in the binary, served under `/.menshen/static/NAME`.

/// One embedded static file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticAsset {
    /// Value for the `Content-Type` response header.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

const MENSHEN_CSS: &[u8] = include_bytes!("../static/menshen.css");
const FAVICON_SVG: &[u8] = include_bytes!("../static/favicon.svg");
const CERTIFICATE_JS: &[u8] = include_bytes!("../static/certificate.js");
const MOBILE_JS: &[u8] = include_bytes!("../static/mobile.js");
const CAPTCHA_JS: &[u8] = include_bytes!("../static/captcha.js");

/// The embedded asset called `name` (the part after `/.menshen/static/`), if any.
pub fn static_asset(name: &str) -> Option<StaticAsset> {
    match name {
        "menshen.css" => Some(StaticAsset {
            content_type: "text/css; charset=utf-8",
            body: MENSHEN_CSS,
        }),
        "certificate.js" => Some(StaticAsset {
            content_type: "text/javascript; charset=utf-8",
            body: CERTIFICATE_JS,
        }),
        "captcha.js" => Some(StaticAsset {
            content_type: "text/javascript; charset=utf-8",
            body: CAPTCHA_JS,
        }),
        "mobile.js" => Some(StaticAsset {
            content_type: "text/javascript; charset=utf-8",
            body: MOBILE_JS,
        }),
        "favicon.svg" => Some(StaticAsset {
            content_type: "image/svg+xml",
            body: FAVICON_SVG,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_assets() {
        let css = static_asset("menshen.css").expect("css");
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        let text = std::str::from_utf8(css.body).expect("utf-8");
        assert!(text.contains("Noto Sans TC"));
        assert!(text.contains("Microsoft JhengHei"));
        assert!(text.contains("pre-line"));
        assert!(text.contains(":focus-visible"));

        let icon = static_asset("favicon.svg").expect("favicon");
        assert_eq!(icon.content_type, "image/svg+xml");
        assert!(
            std::str::from_utf8(icon.body)
                .expect("utf-8")
                .contains("<svg")
        );
    }

    #[test]
    fn the_certificate_script_talks_only_to_the_component_origin() {
        let js = static_asset("certificate.js").expect("script");
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        let text = std::str::from_utf8(js.body).expect("utf-8");
        assert!(text.contains("asker.postMessage(JSON.stringify(tbsPackage), COMPONENT)"));
        assert!(text.contains("if (event.origin !== COMPONENT || event.source !== popup) return;"));
        assert!(text.contains("/p11Image.bmp?withcert=true"));
        assert!(text.contains("/.menshen/certificate/challenge"));
        assert!(text.contains("/.menshen/certificate/verify"));
    }

    #[test]
    fn unknown_assets() {
        assert_eq!(static_asset(""), None);
        assert_eq!(static_asset("../Cargo.toml"), None);
        assert_eq!(static_asset("MENSHEN.CSS"), None);
        assert_eq!(static_asset("menshen.css/"), None);
    }
}
