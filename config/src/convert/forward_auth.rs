//! `[forward_auth]`: Menshen as the authorisation server of a proxy the school already runs
//! (nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`).

use crate::model::ForwardAuth;
use crate::reader::{Cx, Table};

use super::factors::parse_network;

pub(super) fn forward_auth(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> Option<ForwardAuth> {
    let mut table = root.table(cx, "forward_auth")?;
    table.require(cx, "trusted_proxies");
    let mut trusted_proxies = Vec::new();
    if let Some(list) = table.strings(cx, "trusted_proxies") {
        if list.value.is_empty() {
            cx.error(
                &list.span,
                "`forward_auth.trusted_proxies` must list at least one proxy address or network",
            );
        }
        for text in list.value {
            match parse_network(&text.value) {
                Some(n) => trusted_proxies.push(n),
                None => cx.error(
                    &text.span,
                    format!(
                        "`forward_auth.trusted_proxies`: {} is not an address or network such \
                         as \"127.0.0.1/32\" or \"10.0.0.0/8\"",
                        text.shown()
                    ),
                ),
            }
        }
    }
    table.finish(cx);
    Some(ForwardAuth { trusted_proxies })
}
