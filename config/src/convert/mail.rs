//! `[mail]`: outgoing mail for password reset links and notices. Absent means those features
//! are off (the forgot-password page then says whom to contact instead).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{MailConfig, MailPassword, MailTransport, SmtpSecurity, SmtpServer};
use crate::reader::{Cx, Table, Text};

/// One delivery: long enough for a slow school mail server, short enough that a dead one does
/// not pile up the queue for minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) fn mail(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> Option<MailConfig> {
    let mut table = root.table(cx, "mail")?;
    let span = table.span();
    table.require(cx, "from");
    let from = table.string(cx, "from").and_then(|text| {
        match text.value.parse::<lettre::message::Mailbox>() {
            Ok(_) if !text.value.contains(['\r', '\n']) => Some(text.value),
            _ => {
                cx.error(
                    &text.span,
                    format!(
                        "`mail.from`: {} is not one mail address such as \
                         \"門神 Menshen <noreply@school.example>\" or \"noreply@school.example\"",
                        text.shown()
                    ),
                );
                None
            }
        }
    });
    let smtp = table.string(cx, "smtp_url");
    let outbox = table.string(cx, "outbox");
    let transport = match (smtp, outbox) {
        (Some(url), None) => smtp_server(cx, &url).map(MailTransport::Smtp),
        (None, Some(dir)) if !dir.value.trim().is_empty() => {
            Some(MailTransport::Outbox(PathBuf::from(dir.value)))
        }
        (None, Some(dir)) => {
            cx.error(&dir.span, "`mail.outbox` must name a directory");
            None
        }
        (Some(_), Some(dir)) => {
            cx.error(
                &dir.span,
                "[mail] takes `smtp_url` or `outbox`, not both: mail goes to one place",
            );
            None
        }
        (None, None) => {
            cx.error(
                &span,
                "[mail] needs `smtp_url` (\"smtp://user:password@mail.school.example:587\") \
                 or `outbox` (a directory for .eml files, for development)",
            );
            None
        }
    };
    let timeout = match table.duration(cx, "timeout") {
        Some(d) if d.value < MIN_TIMEOUT || d.value > MAX_TIMEOUT => {
            cx.error(&d.span, "`mail.timeout` must be between 1s and 120s");
            DEFAULT_TIMEOUT
        }
        Some(d) => d.value,
        None => DEFAULT_TIMEOUT,
    };
    let link_base =
        table
            .string(cx, "link_base")
            .and_then(|text| match url::Url::parse(&text.value) {
                Ok(u)
                    if matches!(u.scheme(), "https" | "http")
                        && u.host_str().is_some()
                        && u.path() == "/"
                        && u.query().is_none()
                        && u.fragment().is_none()
                        && u.username().is_empty() =>
                {
                    Some(text.value.trim_end_matches('/').to_owned())
                }
                _ => {
                    cx.error(
                        &text.span,
                        format!(
                            "`mail.link_base`: {} is not an origin such as \
                         \"https://login.school.example\" (scheme and host, no path)",
                            text.shown()
                        ),
                    );
                    None
                }
            });
    table.finish(cx);
    Some(MailConfig {
        from: from.unwrap_or_default(),
        transport: transport.unwrap_or(MailTransport::Outbox(PathBuf::new())),
        timeout,
        link_base,
    })
}

/// Takes `smtp_url` apart. Messages never quote the URL: it may hold the password.
fn smtp_server(cx: &mut Cx<'_>, text: &Text) -> Option<SmtpServer> {
    let bad = |cx: &mut Cx<'_>, why: &str| {
        cx.error(
            &text.span,
            format!(
                "`mail.smtp_url`: {why} (expected \"smtp://user:password@host:587\" for \
                 STARTTLS or \"smtps://user:password@host:465\" for TLS)"
            ),
        );
        None
    };
    let Ok(url) = url::Url::parse(&text.value) else {
        return bad(cx, "not a URL");
    };
    let mut security = match url.scheme() {
        "smtp" => SmtpSecurity::StartTls,
        "smtps" => SmtpSecurity::Tls,
        _ => return bad(cx, "the scheme must be smtp:// or smtps://"),
    };
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return bad(cx, "no host");
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if !(url.path().is_empty() || url.path() == "/") || url.fragment().is_some() {
        return bad(cx, "no path is allowed");
    }
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "none") if security == SmtpSecurity::StartTls => {
                let loopback =
                    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    return bad(
                        cx,
                        "`?tls=none` sends passwords and reset links in clear text and is \
                         allowed only for a server on this machine (localhost)",
                    );
                }
                security = SmtpSecurity::None;
            }
            _ => return bad(cx, "the only query allowed is `?tls=none` with smtp://"),
        }
    }
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::Tls => 465,
        _ => 587,
    });
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
    };
    let user = match url.username() {
        "" => None,
        u => match decode(u) {
            Ok(u) => Some(u),
            Err(_) => return bad(cx, "the user name is not UTF-8"),
        },
    };
    let password = match url.password() {
        None => None,
        Some(p) => match decode(p) {
            Ok(p) => Some(MailPassword(p)),
            Err(_) => return bad(cx, "the password is not UTF-8"),
        },
    };
    if password.is_some() && user.is_none() {
        return bad(cx, "a password needs a user name");
    }
    Some(SmtpServer {
        host,
        port,
        security,
        user,
        password,
    })
}
