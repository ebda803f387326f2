//! `[mobile_certificate]`: the mobile citizen certificate (行動自然人憑證, TW FidO) login
//! method, through the Ministry of the Interior's SP API. Absent means the method is off.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::model::{MobileCertificateConfig, MobileKey};
use crate::reader::{Cx, Table};

/// MOI accepts a ticket lifetime of 30 to 600 whole seconds (`SPTKT_TIME_ORV` outside).
const MIN_TIME_LIMIT: Duration = Duration::from_secs(30);
const MAX_TIME_LIMIT: Duration = Duration::from_secs(600);
/// Two minutes: long enough to find the phone and unlock the app, short enough that an
/// abandoned sign-in does not hold a polling slot for long.
const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(120);
/// One call to MOI: a person waiting on the page should hear "unavailable" within seconds,
/// and a slow MOI must not hold a request slot for long.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads `[mobile_certificate]`. `has_certificate`: whether `[certificate]` is configured;
/// its trust store verifies the mobile certificates, so it is required.
pub(super) fn mobile_certificate(
    root: &mut Table<'_, '_>,
    cx: &mut Cx<'_>,
    has_certificate: bool,
) -> Option<MobileCertificateConfig> {
    let mut table = root.table(cx, "mobile_certificate")?;
    if !has_certificate {
        cx.error(
            &table.span(),
            "`[mobile_certificate]` requires a `[certificate]` table: its trust anchors, \
             intermediates and CRLs verify the mobile certificates (MOICA G3 → GRCA G3)",
        );
    }
    table.require(cx, "api_url");
    table.require(cx, "sp_service_id");
    table.require(cx, "aes_key");
    let api_url = table.string(cx, "api_url").and_then(|text| {
        let ok = super::certificate::is_http_url(&text.value) && !text.value.contains(['?', '#']);
        if !ok {
            cx.error(
                &text.span,
                format!(
                    "`mobile_certificate.api_url`: {} is not an http:// or https:// base URL \
                     such as \"https://fidoapi.moi.gov.tw\"",
                    text.shown()
                ),
            );
        }
        ok.then(|| text.value.trim_end_matches('/').to_owned())
    });
    let sp_service_id = table.string(cx, "sp_service_id").and_then(|text| {
        let ok = !text.value.is_empty()
            && text.value.len() <= 100
            && text.value.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            cx.error(
                &text.span,
                format!(
                    "`mobile_certificate.sp_service_id`: {} is not a service ID issued by MOI \
                     (printable ASCII, no spaces)",
                    text.shown()
                ),
            );
        }
        ok.then_some(text.value)
    });
    // Never quote the key: not even a wrong one, which may be a real key with a typo.
    let aes_key = table
        .string(cx, "aes_key")
        .and_then(|text| match parse_key(&text.value) {
            Some(key) => Some(key),
            None => {
                cx.error(
                    &text.span,
                    "`mobile_certificate.aes_key` must be 32 bytes written in base64 or \
                     base64url (the AES-256 key MOI issued with the service ID)",
                );
                None
            }
        });
    let time_limit = match table.duration(cx, "time_limit") {
        Some(d) if d.value < MIN_TIME_LIMIT || d.value > MAX_TIME_LIMIT => {
            cx.error(
                &d.span,
                "`mobile_certificate.time_limit` must be between 30s and 600s (MOI's limits)",
            );
            DEFAULT_TIME_LIMIT
        }
        Some(d) if d.value.subsec_nanos() != 0 => {
            cx.error(
                &d.span,
                "`mobile_certificate.time_limit` must be whole seconds (MOI counts seconds)",
            );
            DEFAULT_TIME_LIMIT
        }
        Some(d) => d.value,
        None => DEFAULT_TIME_LIMIT,
    };
    let request_timeout = match table.duration(cx, "request_timeout") {
        Some(d) if d.value < MIN_REQUEST_TIMEOUT || d.value > MAX_REQUEST_TIMEOUT => {
            cx.error(
                &d.span,
                "`mobile_certificate.request_timeout` must be between 1s and 30s",
            );
            DEFAULT_REQUEST_TIMEOUT
        }
        Some(d) => d.value,
        None => DEFAULT_REQUEST_TIMEOUT,
    };
    table.finish(cx);
    Some(MobileCertificateConfig {
        request_timeout,
        api_url: api_url.unwrap_or_default(),
        sp_service_id: sp_service_id.unwrap_or_default(),
        aes_key: aes_key.unwrap_or(MobileKey([0; 32])),
        time_limit,
    })
}

/// 32 bytes in standard base64 or base64url, padding optional: two C# SDKs decode MOI's key
/// text with the URL alphabet, the other clients with the standard one, so accept both.
pub(crate) fn parse_key(text: &str) -> Option<MobileKey> {
    let trimmed = text.trim().trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok().map(MobileKey)
}

#[cfg(test)]
mod tests {
    use super::parse_key;

    #[test]
    fn keys_in_both_alphabets() {
        // 32 bytes 0xfb...: '+' and '/' in standard base64, '-' and '_' in base64url.
        let standard = "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=";
        let url = "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s";
        let a = parse_key(standard).map(|k| k.0);
        let b = parse_key(url).map(|k| k.0);
        assert!(a.is_some());
        assert_eq!(a, b);
        assert!(parse_key("AAAA").is_none());
        assert!(parse_key("not base64 at all!").is_none());
        // 33 bytes.
        assert!(parse_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_none());
    }
}
