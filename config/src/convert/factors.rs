//! The second-factor tables: `[lockout]`, `[captcha]` and `[otp]`.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::model::{CaptchaMode, LockoutConfig, OtpConfig};
use crate::reader::{Cx, Table};

const DEFAULT_FAILURES: u32 = 3;
const DEFAULT_LOCK: Duration = Duration::from_secs(15 * 60);
const DEFAULT_IP_PER_MINUTE: u32 = 30;

pub(super) fn lockout(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> LockoutConfig {
    let mut lockout = LockoutConfig {
        password_failures: DEFAULT_FAILURES,
        otp_failures: DEFAULT_FAILURES,
        duration: DEFAULT_LOCK,
        ip_attempts_per_minute: DEFAULT_IP_PER_MINUTE,
        trusted_networks: Vec::new(),
    };
    let Some(mut table) = root.table(cx, "lockout") else {
        return lockout;
    };
    if let Some(n) = table.integer(cx, "password_failures", 1..=100) {
        lockout.password_failures = u32::try_from(n.value).unwrap_or(DEFAULT_FAILURES);
    }
    if let Some(n) = table.integer(cx, "otp_failures", 1..=100) {
        lockout.otp_failures = u32::try_from(n.value).unwrap_or(DEFAULT_FAILURES);
    }
    if let Some(d) = table.duration(cx, "duration") {
        lockout.duration = d.value;
    }
    if let Some(n) = table.integer(cx, "ip_attempts_per_minute", 0..=100_000) {
        lockout.ip_attempts_per_minute = u32::try_from(n.value).unwrap_or(DEFAULT_IP_PER_MINUTE);
    }
    if let Some(list) = table.strings(cx, "trusted_networks") {
        for text in list.value {
            match parse_network(&text.value) {
                Some(n) => lockout.trusted_networks.push(n),
                None => cx.error(
                    &text.span,
                    format!(
                        "`lockout.trusted_networks`: {} is not a network such as \
                         \"10.0.0.0/8\" or \"2001:db8::/32\"",
                        text.shown()
                    ),
                ),
            }
        }
    }
    table.finish(cx);
    lockout
}

/// `ADDRESS/PREFIX`, or a bare address (a network of one). An IPv4-mapped IPv6 network
/// (`::ffff:10.0.0.0/104`) is stored as the IPv4 one, since client addresses are matched in
/// their canonical form.
pub(super) fn parse_network(text: &str) -> Option<IpNet> {
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => IpNet::from(text.parse::<IpAddr>().ok()?),
    };
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .ok()
                .map(IpNet::V4),
            None => Some(net),
        },
        _ => Some(net),
    }
}

pub(super) fn captcha(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> CaptchaMode {
    let Some(mut table) = root.table(cx, "captcha") else {
        return CaptchaMode::Always;
    };
    let mut mode = CaptchaMode::Always;
    if let Some(text) = table.string(cx, "mode") {
        let name = table.name("mode");
        mode = match super::choice(cx, &name, &text, &["always", "after_failure", "off"]) {
            Some("after_failure") => CaptchaMode::AfterFailure,
            Some("off") => CaptchaMode::Off,
            _ => CaptchaMode::Always,
        };
    }
    table.finish(cx);
    mode
}

pub(super) fn otp(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> OtpConfig {
    let mut otp = OtpConfig {
        issuer: "Menshen".to_owned(),
        keys: String::new(),
    };
    let Some(mut table) = root.table(cx, "otp") else {
        cx.error(
            &root.span(),
            "an [otp] table with `keys` is required: the key that seals OTP secrets at rest \
             (generate one with `menshen keys generate`; keep it in the environment, e.g. \
             keys = \"${MENSHEN_OTP_KEYS}\")",
        );
        return otp;
    };
    if let Some(issuer) = table.string(cx, "issuer") {
        if issuer.value.trim().is_empty() || issuer.value.contains(':') {
            cx.error(
                &issuer.span,
                "`otp.issuer` must be non-empty and contain no ':'",
            );
        } else {
            otp.issuer = issuer.value;
        }
    }
    table.require(cx, "keys");
    if let Some(keys) = table.string(cx, "keys") {
        // Never quote the value: it is key material.
        match menshen_otp::sealed::Keyring::parse(&keys.value) {
            Ok(_) => otp.keys = keys.value,
            Err(e) => cx.error(&keys.span, format!("`otp.keys`: {e}")),
        }
    }
    table.finish(cx);
    otp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_match() {
        let ip = |t: &str| t.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let n = parse_network("10.1.0.0/16");
        assert!(n.is_some_and(|n| n.contains(&ip("10.1.2.3"))));
        assert!(n.is_some_and(|n| !n.contains(&ip("10.2.0.1"))));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("nonsense").is_none());
        assert_eq!(parse_network("192.0.2.7").map(|n| n.prefix_len()), Some(32));
        assert!(parse_network("0.0.0.0/0").is_some_and(|n| n.contains(&ip("8.8.8.8"))));
        assert!(parse_network("2001:db8::/32").is_some_and(|n| n.contains(&ip("2001:db8:1::9"))));
        // Written the mapped way, matched the canonical way.
        assert_eq!(
            parse_network("::ffff:10.0.0.0/104").map(|n| n.to_string()),
            Some("10.0.0.0/8".to_owned())
        );
    }
}
