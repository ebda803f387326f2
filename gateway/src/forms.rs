//! Reading the small forms Menshen answers itself (login, logout), with hard limits.
//!
//! The body is read only for requests Menshen handles (reading consumes it), never more than
//! the limit, and every field must be valid UTF-8 after decoding: a garbled form gets a 400,
//! not a best guess.

use pingora::proxy::Session;

/// No Menshen form is anywhere near this size.
pub const FORM_LIMIT: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    TooLarge,
    NotAForm,
    Garbled,
    Unreadable,
}

/// Decoded `application/x-www-form-urlencoded` fields, in order.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`; later duplicates are ignored.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a urlencoded body or query string strictly.
pub fn parse(body: &[u8]) -> Result<Form, FormError> {
    let mut fields = Vec::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let name = decode(parts.next().unwrap_or_default())?;
        let value = decode(parts.next().unwrap_or_default())?;
        fields.push((name, value));
    }
    Ok(Form(fields))
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    // A '%' not followed by two hex digits is a client bug; refuse rather than guess.
    let mut i = 0;
    while i < plus_as_space.len() {
        if plus_as_space[i] == b'%' {
            let ok = plus_as_space
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
            if !ok {
                return Err(FormError::Garbled);
            }
        }
        i += 1;
    }
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    let text = String::from_utf8(bytes).map_err(|_| FormError::Garbled)?;
    if text
        .chars()
        .any(|c| c.is_control() && c != '\t' && c != '\n' && c != '\r')
    {
        return Err(FormError::Garbled);
    }
    Ok(text)
}

/// Reads and parses the request body of a form POST.
pub async fn read(session: &mut Session) -> Result<Form, FormError> {
    let header = session.req_header();
    let content_type = header
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(FormError::NotAForm);
    }
    if let Some(len) = header
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > FORM_LIMIT
    {
        return Err(FormError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > FORM_LIMIT {
                    return Err(FormError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(_) => return Err(FormError::Unreadable),
        }
    }
    parse(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields() {
        let f = parse(b"username=%E7%8E%8B+a&password=p%26w&x").unwrap_or_default();
        assert_eq!(f.get("username"), Some("王 a"));
        assert_eq!(f.get("password"), Some("p&w"));
        assert_eq!(f.get("x"), Some(""));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn refuses_garbled_input() {
        assert_eq!(parse(b"a=%ff%fe").err(), Some(FormError::Garbled));
        assert_eq!(parse(b"a=%zz").err(), Some(FormError::Garbled));
        assert_eq!(parse(b"a=%4").err(), Some(FormError::Garbled));
        assert_eq!(parse(b"a=%00").err(), Some(FormError::Garbled));
    }
}
