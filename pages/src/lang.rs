//! Page language: the two supported languages and their negotiation from an explicit choice
//! (`?lang=` or cookie) or the `Accept-Language` header.

use crate::texts::{EN, Texts, ZH_TW};

/// A language Menshen's pages are available in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Traditional Chinese as used in Taiwan (the default for schools).
    ZhTw,
    /// English.
    En,
}

impl Lang {
    /// Picks the page language: the `?lang=` switch value or cookie value ("zh-TW" / "en",
    /// case-insensitive) when it names a supported language, else the best supported entry of
    /// `Accept-Language` (q-values honoured; `zh`, `zh-TW`, `zh-Hant`… → [`Lang::ZhTw`];
    /// `en`, `en-*` → [`Lang::En`]), else `default`.
    pub fn negotiate(explicit: Option<&str>, accept_language: Option<&str>, default: Lang) -> Lang {
        if let Some(lang) = explicit.and_then(Lang::from_code) {
            return lang;
        }
        accept_language
            .and_then(best_from_accept_language)
            .unwrap_or(default)
    }

    /// Parses a language code or tag, case-insensitively: `zh-TW`, `zh`, `zh-Hant`, `zh-Hant-TW`
    /// (any `zh` tag) → [`Lang::ZhTw`]; `en`, `en-US`… → [`Lang::En`]. Anything else → `None`.
    pub fn from_code(code: &str) -> Option<Lang> {
        let code = code.trim();
        let primary = code.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::ZhTw)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The code used in `?lang=` and the language cookie: `"zh-TW"` or `"en"`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::ZhTw => "zh-TW",
            Lang::En => "en",
        }
    }

    /// The value of the `<html lang>` attribute: `"zh-Hant-TW"` or `"en"`.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::ZhTw => "zh-Hant-TW",
            Lang::En => "en",
        }
    }

    /// The translations for this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::ZhTw => &ZH_TW,
            Lang::En => &EN,
        }
    }

    /// The other language (target of the language switch link).
    pub fn other(self) -> Lang {
        match self {
            Lang::ZhTw => Lang::En,
            Lang::En => Lang::ZhTw,
        }
    }
}

/// The supported language with the highest q-value in an `Accept-Language` header; on equal
/// q-values the earlier entry wins. Entries with `q=0` or an unparsable q-value are ignored.
fn best_from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, u16)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let Some(lang) = Lang::from_code(tag) else {
            continue;
        };
        let mut quality = Some(1000);
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                quality = parse_q(value.trim());
            }
        }
        let Some(q) = quality else {
            continue;
        };
        if q == 0 {
            continue;
        }
        if best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((lang, q));
        }
    }
    best.map(|(lang, _)| lang)
}

/// Parses an RFC 9110 qvalue (`0`, `0.5`, `1.000`…) into thousandths.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        let digit = u16::from(b - b'0');
        thousandths += digit * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for lang in [Lang::ZhTw, Lang::En] {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("ZH-tw"), Some(Lang::ZhTw));
        assert_eq!(Lang::from_code("EN"), Some(Lang::En));
        assert_eq!(Lang::from_code("zh-Hant"), Some(Lang::ZhTw));
        assert_eq!(Lang::from_code("en-US"), Some(Lang::En));
        assert_eq!(Lang::from_code("fr"), None);
        assert_eq!(Lang::from_code(""), None);
        assert_eq!(Lang::from_code("english"), None);
    }

    #[test]
    fn explicit_choice_wins() {
        assert_eq!(
            Lang::negotiate(Some("en"), Some("zh-TW"), Lang::ZhTw),
            Lang::En
        );
        assert_eq!(
            Lang::negotiate(Some("zh-tw"), Some("en"), Lang::En),
            Lang::ZhTw
        );
        assert_eq!(Lang::negotiate(Some("ZH-TW"), None, Lang::En), Lang::ZhTw);
    }

    #[test]
    fn unknown_explicit_falls_through() {
        assert_eq!(
            Lang::negotiate(Some("fr"), Some("en"), Lang::ZhTw),
            Lang::En
        );
        assert_eq!(Lang::negotiate(Some("<x>"), None, Lang::ZhTw), Lang::ZhTw);
    }

    #[test]
    fn accept_language_basics() {
        let n = |h: &str| Lang::negotiate(None, Some(h), Lang::En);
        assert_eq!(n("zh-TW"), Lang::ZhTw);
        assert_eq!(n("zh"), Lang::ZhTw);
        assert_eq!(n("zh-Hant"), Lang::ZhTw);
        assert_eq!(n("zh-Hant-TW,zh;q=0.9"), Lang::ZhTw);
        let n = |h: &str| Lang::negotiate(None, Some(h), Lang::ZhTw);
        assert_eq!(n("en"), Lang::En);
        assert_eq!(n("en-US,en;q=0.9"), Lang::En);
        assert_eq!(n("en-GB"), Lang::En);
    }

    #[test]
    fn accept_language_q_values() {
        let n = |h: &str, d| Lang::negotiate(None, Some(h), d);
        assert_eq!(n("en;q=0.5, zh-TW;q=0.9", Lang::En), Lang::ZhTw);
        assert_eq!(n("zh-TW;q=0.4, en;q=0.8", Lang::ZhTw), Lang::En);
        assert_eq!(n("fr, en;q=0.3, zh;q=0.2", Lang::ZhTw), Lang::En);
        assert_eq!(n("de-DE, fr;q=0.9", Lang::ZhTw), Lang::ZhTw);
        assert_eq!(n("de-DE, fr;q=0.9", Lang::En), Lang::En);
        // Equal q: the first listed wins.
        assert_eq!(n("en;q=0.8, zh;q=0.8", Lang::ZhTw), Lang::En);
        // q=0 means "not acceptable".
        assert_eq!(n("en;q=0, zh-TW;q=0.1", Lang::En), Lang::ZhTw);
        assert_eq!(n("en;q=0", Lang::ZhTw), Lang::ZhTw);
        // Spaces and upper case in the parameter.
        assert_eq!(n("zh-TW ; Q=0.2 , en ; q=0.7", Lang::ZhTw), Lang::En);
        // Invalid q-values are ignored.
        assert_eq!(n("en;q=2, zh;q=0.1", Lang::En), Lang::ZhTw);
        assert_eq!(n("en;q=abc", Lang::ZhTw), Lang::ZhTw);
        assert_eq!(n("*", Lang::En), Lang::En);
        assert_eq!(n("", Lang::ZhTw), Lang::ZhTw);
    }

    #[test]
    fn no_information_gives_default() {
        assert_eq!(Lang::negotiate(None, None, Lang::ZhTw), Lang::ZhTw);
        assert_eq!(Lang::negotiate(None, None, Lang::En), Lang::En);
    }

    #[test]
    fn q_parsing() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.123"), Some(123));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("0.1234"), None);
        assert_eq!(parse_q(""), None);
        assert_eq!(parse_q("-1"), None);
    }
}
