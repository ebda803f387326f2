//! `[[oidc]]`: OpenID Connect providers (Google, the education cloud 教育雲端帳號, ...).

use std::collections::HashSet;

use crate::model::OidcProvider;
use crate::reader::{Cx, Table};

pub(super) fn providers(root: &mut Table<'_, '_>, cx: &mut Cx<'_>) -> Vec<OidcProvider> {
    let mut seen = HashSet::new();
    let mut providers = Vec::new();
    for mut table in root.tables(cx, "oidc") {
        for key in ["id", "display_name", "issuer", "client_id", "client_secret"] {
            table.require(cx, key);
        }
        let id = table.string(cx, "id").and_then(|text| {
            let ok = !text.value.is_empty()
                && text.value.len() <= 32
                && text
                    .value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                cx.error(
                    &text.span,
                    "`oidc.id` must be 1 to 32 lowercase letters, digits or '-' (it appears in \
                     paths and in the auth-method header)",
                );
                return None;
            }
            if !seen.insert(text.value.clone()) {
                cx.error(
                    &text.span,
                    format!("`oidc.id` {} is used twice", text.shown()),
                );
                return None;
            }
            Some(text.value)
        });
        let display_name = table.string(cx, "display_name").map(|t| t.value);
        let button_label = table.string(cx, "button_label").map(|t| t.value);
        let issuer = table.string(cx, "issuer").and_then(|text| {
            let loopback = text.value.starts_with("http://127.0.0.1")
                || text.value.starts_with("http://localhost")
                || text.value.starts_with("http://[::1]");
            if text.value.starts_with("https://") || loopback {
                Some(text.value)
            } else {
                cx.error(
                    &text.span,
                    "`oidc.issuer` must be an https:// URL (plain http only on loopback, for tests)",
                );
                None
            }
        });
        let client_id = table.string(cx, "client_id").map(|t| t.value);
        // Never quoted in messages: it is a secret.
        let client_secret = table.string(cx, "client_secret").map(|t| t.value);
        let mut scopes = vec![
            "openid".to_owned(),
            "email".to_owned(),
            "profile".to_owned(),
        ];
        if let Some(list) = table.strings(cx, "scopes") {
            scopes = list.value.iter().map(|t| t.value.clone()).collect();
            if !scopes.iter().any(|s| s == "openid") {
                cx.error(&list.span, "`oidc.scopes` must include \"openid\"");
            }
        }
        let claim = table
            .string(cx, "claim")
            .map(|t| t.value)
            .unwrap_or_else(|| "email".to_owned());
        let require_otp = table.bool(cx, "require_otp").unwrap_or(true);
        table.finish(cx);
        if let (Some(id), Some(display_name), Some(issuer), Some(client_id), Some(client_secret)) =
            (id, display_name, issuer, client_id, client_secret)
        {
            providers.push(OidcProvider {
                id,
                button_label: button_label.unwrap_or_else(|| display_name.clone()),
                display_name,
                issuer: issuer.trim_end_matches('/').to_owned(),
                client_id,
                client_secret,
                scopes,
                claim,
                require_otp,
            });
        }
    }
    providers
}
