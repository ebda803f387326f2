//! Identity header names: the global `[headers]`, per-site overrides, and their checks.

use std::ops::Range;

use menshen_policies::headers::{FORWARDING, SET_BY_MENSHEN, folded};

use crate::model::HeaderNames;
use crate::reader::{Cx, Table, Text};

/// Headers the gateway or HTTP itself manages; using one of them for identity would break
/// routing, framing or the session cookie.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "cookie",
    "set-cookie",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

const HEADER_FIELDS: [&str; 5] = ["user", "name", "roles", "school", "auth_method"];

/// Header names together with where each was set, for the duplicate check.
#[derive(Clone)]
pub(super) struct HeaderSet {
    pub(super) names: HeaderNames,
    /// Where each field of [`HEADER_FIELDS`] was written; `None` for defaults.
    spans: [Option<Range<usize>>; 5],
    /// The table the overrides came from, for problems with inherited names.
    table: Option<Range<usize>>,
}

impl HeaderSet {
    pub(super) fn defaults() -> Self {
        Self {
            names: HeaderNames::default(),
            spans: Default::default(),
            table: None,
        }
    }

    /// The fields in [`HEADER_FIELDS`] order.
    fn fields_mut(names: &mut HeaderNames) -> [&mut String; 5] {
        [
            &mut names.user,
            &mut names.name,
            &mut names.roles,
            &mut names.school,
            &mut names.auth_method,
        ]
    }

    /// Applies overrides, then reports any two fields that ended up with the same header:
    /// the gateway would send one identity value under the other's name.
    pub(super) fn apply(mut self, cx: &mut Cx<'_>, overrides: HeaderOverrides) -> Self {
        self.table = Some(overrides.table);
        let targets = Self::fields_mut(&mut self.names)
            .into_iter()
            .zip(self.spans.iter_mut());
        for ((field, span), value) in targets.zip(overrides.values) {
            if let Some(text) = value {
                *field = text.value;
                *span = Some(text.span);
            }
        }

        let mut names = self.names.clone();
        let entries: Vec<(&str, String, Option<&Range<usize>>)> = HEADER_FIELDS
            .into_iter()
            .zip(Self::fields_mut(&mut names))
            .zip(&self.spans)
            .map(|((key, name), span)| (key, name.to_ascii_lowercase(), span.as_ref()))
            .collect();
        for (index, (key, name, span)) in entries.iter().enumerate() {
            let Some((earlier_key, _, earlier_span)) = entries
                .iter()
                .take(index)
                .find(|(_, other, _)| other == name)
            else {
                continue;
            };
            let at = span
                .or(*earlier_span)
                .or(self.table.as_ref())
                .cloned()
                .unwrap_or(0..0);
            cx.error(
                &at,
                format!(
                    "identity headers `{earlier_key}` and `{key}` must differ, both are \"{name}\""
                ),
            );
        }
        self
    }
}

pub(super) struct HeaderOverrides {
    /// One entry per field of [`HEADER_FIELDS`], `None` where not overridden.
    values: [Option<Text>; 5],
    table: Range<usize>,
}

/// `strip_headers` and `keep_headers` of a site: the forwarding headers removed from its
/// requests, as folded names (see `menshen_policies::headers`).
pub(super) fn untrusted_headers(cx: &mut Cx<'_>, table: &mut Table<'_, '_>) -> Vec<String> {
    let mut list: Vec<String> = FORWARDING.iter().map(|n| (*n).to_owned()).collect();
    let mut kept: Vec<String> = Vec::new();
    if let Some(keep) = table.strings(cx, "keep_headers") {
        for text in keep.value {
            let name = folded(&text.value);
            if SET_BY_MENSHEN.contains(&name.as_str()) {
                cx.error(
                    &text.span,
                    format!(
                        "`site.keep_headers`: {} is set by Menshen itself on every request",
                        text.shown()
                    ),
                );
            } else if !FORWARDING.contains(&name.as_str()) {
                cx.error(
                    &text.span,
                    format!(
                        "`site.keep_headers`: {} is not one of the forwarding headers Menshen \
                         removes (see the README), so there is nothing to keep",
                        text.shown()
                    ),
                );
            } else {
                list.retain(|n| *n != name);
                kept.push(name);
            }
        }
    }
    if let Some(strip) = table.strings(cx, "strip_headers") {
        for text in strip.value {
            let name = folded(&text.value);
            if let Some(problem) = header_problem(&text.value) {
                cx.error(
                    &text.span,
                    format!("`site.strip_headers`: {} {problem}", text.shown()),
                );
            } else if kept.contains(&name) {
                cx.error(
                    &text.span,
                    format!(
                        "`site.strip_headers`: {} is also in `keep_headers`",
                        text.shown()
                    ),
                );
            } else if !list.contains(&name) {
                list.push(name);
            }
        }
    }
    list
}

pub(super) fn read_headers(cx: &mut Cx<'_>, mut table: Table<'_, '_>) -> HeaderOverrides {
    let values = HEADER_FIELDS.map(|key| {
        table.string(cx, key).filter(|text| {
            let problem = header_problem(&text.value);
            if let Some(problem) = &problem {
                cx.error(
                    &text.span,
                    format!("`{}`: {} {problem}", table.name(key), text.shown()),
                );
            }
            problem.is_none()
        })
    });
    let span = table.span();
    table.finish(cx);
    HeaderOverrides {
        values,
        table: span,
    }
}

pub(super) fn header_problem(name: &str) -> Option<&'static str> {
    // RFC 9110 `token`: the only characters a header field name may contain.
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        Some("is not a valid HTTP header name")
    } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        Some("is managed by HTTP or the gateway")
    } else {
        None
    }
}
