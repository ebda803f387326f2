//! `[portal]`: the single sign-on host (單一簽入). With it, every interactive page lives on
//! this host only and the protected sites receive signed-in people through a hand-off.

use crate::host;
use crate::model::{Portal, Site};
use crate::reader::{Cx, Table};

/// Reads `[portal]` and checks it against the sites read before it. `can_set_cookies`: a
/// listener has `tls`, or development cookies work over plain HTTP.
pub(super) fn portal(
    root: &mut Table<'_, '_>,
    cx: &mut Cx<'_>,
    sites: &[Site],
    can_set_cookies: bool,
) -> Option<Portal> {
    let mut table = root.table(cx, "portal")?;
    let table_span = table.span();
    table.require(cx, "host");
    let text = table.string(cx, "host");
    table.finish(cx);
    let text = text?;
    let parsed = match host::parse_configured(&text.value) {
        Ok(parsed) => parsed,
        Err(problem) => {
            cx.error(&text.span, format!("`portal.host`: {problem}"));
            return None;
        }
    };
    if parsed.name == "*" {
        cx.error(
            &text.span,
            "`portal.host` must name one host; `*` would put the sign-in pages on every host",
        );
        return None;
    }
    let canonical = parsed.to_canonical();
    for site in sites {
        for site_host in &site.hosts {
            if site_host == "*" {
                cx.error(
                    &text.span,
                    format!(
                        "with [portal], site \"{}\" must list its hosts: the catch-all `*` \
                         cannot receive a single sign-on hand-off (and would make every host \
                         a valid return target)",
                        site.name
                    ),
                );
            } else if host::split(site_host).is_some_and(|h| h.name == parsed.name) {
                cx.error(
                    &text.span,
                    format!(
                        "`portal.host` \"{canonical}\" is also a host of site \"{}\": the \
                         portal must have a host of its own, so no legacy app shares its origin",
                        site.name
                    ),
                );
            }
        }
    }
    // Production cookies are `__Host-` and `Secure`: the portal can only set them over TLS.
    if !can_set_cookies {
        cx.error(
            &table_span,
            "[portal] needs a [[listen]] with `tls` to serve the portal host over HTTPS \
             (or `session.insecure_dev_cookie = true` for development)",
        );
    }
    Some(Portal { host: canonical })
}
