//! `[[site]]` tables: hosts, upstreams, access rules, and the checks across sites.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;

use menshen_policies::access::{Access, AccessRules, Rule};

use super::choice;
use super::headers::{HeaderSet, read_headers, untrusted_headers};
use crate::host;
use crate::model::Site;
use crate::reader::{Cx, Table, Text};

/// Paths the gateway serves itself (login, binding, static assets); no site rule may reach in.
const RESERVED_PREFIX: &str = "/.menshen";

/// Where a host name was claimed, for the one-site-per-host check.
struct Claim {
    site: usize,
    span: Range<usize>,
}

pub(super) fn sites(root: &mut Table<'_, '_>, cx: &mut Cx<'_>, headers: &HeaderSet) -> Vec<Site> {
    let tables = root.tables(cx, "site");
    if tables.is_empty() {
        cx.error(&root.span(), "at least one [[site]] table is required");
    }
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut claims: HashMap<String, Claim> = HashMap::new();
    let mut sites: Vec<Site> = Vec::with_capacity(tables.len());
    for table in tables {
        let read = site(cx, table, headers);
        let index = sites.len();
        if let Some(span) = read.name_span {
            if let Some(earlier) = names.get(&read.site.name) {
                let line = cx.report.line_of(earlier);
                cx.error(
                    &span,
                    format!(
                        "site name \"{}\" is already used by the site on line {line}",
                        read.site.name
                    ),
                );
            } else {
                names.insert(read.site.name.clone(), span);
            }
        }
        for (host, span) in read.site.hosts.iter().zip(&read.host_spans) {
            let Some(parsed) = host::split(host) else {
                continue;
            };
            let name = parsed.name.into_owned();
            match claims.get(&name) {
                Some(claim) if claim.site != index => {
                    let line = cx.report.line_of(&claim.span);
                    let owner = sites.get(claim.site).map_or("", |s| s.name.as_str());
                    cx.error(
                        span,
                        format!(
                            "host \"{name}\" is already served by site \"{owner}\" (line \
                             {line}); each host name belongs to exactly one site"
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    claims.insert(
                        name,
                        Claim {
                            site: index,
                            span: span.clone(),
                        },
                    );
                }
            }
        }
        sites.push(read.site);
    }
    sites
}

/// A site as read, with the positions the cross-site checks report at.
struct ReadSite {
    site: Site,
    name_span: Option<Range<usize>>,
    /// Position of each entry of `site.hosts`.
    host_spans: Vec<Range<usize>>,
}

fn site(cx: &mut Cx<'_>, mut table: Table<'_, '_>, global_headers: &HeaderSet) -> ReadSite {
    table.require(cx, "name");
    let name = table.string(cx, "name").filter(|text| {
        let valid = !text.value.is_empty()
            && text
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid {
            cx.error(
                &text.span,
                format!(
                    "`site.name` {} must be non-empty and use only letters, digits, '-', '_' \
                     and '.' (it appears in logs and metric labels)",
                    text.shown()
                ),
            );
        }
        valid
    });

    table.require(cx, "hosts");
    let mut hosts = Vec::new();
    let mut host_spans = Vec::new();
    if let Some(list) = table.strings(cx, "hosts") {
        if list.value.is_empty() {
            cx.error(&list.span, "`site.hosts` must list at least one host");
        }
        for text in list.value {
            match host::parse_configured(&text.value) {
                Ok(parsed) => {
                    let canonical = parsed.to_canonical();
                    if hosts.contains(&canonical) {
                        cx.error(
                            &text.span,
                            format!("host \"{canonical}\" is listed twice in this site"),
                        );
                    } else {
                        hosts.push(canonical);
                        host_spans.push(text.span);
                    }
                }
                Err(problem) => cx.error(&text.span, format!("`site.hosts`: {problem}")),
            }
        }
    }

    table.require(cx, "upstreams");
    let mut upstreams = Vec::new();
    if let Some(list) = table.strings(cx, "upstreams") {
        if list.value.is_empty() {
            cx.error(
                &list.span,
                "`site.upstreams` must list at least one upstream",
            );
        }
        for text in list.value {
            upstreams.extend(resolve(cx, &text));
        }
    }

    let upstream_tls = table.bool(cx, "upstream_tls").unwrap_or(false);
    let upstream_sni = table.string(cx, "upstream_sni").and_then(|text| {
        if !upstream_tls {
            cx.error(
                &text.span,
                "`site.upstream_sni` only applies with `upstream_tls = true`",
            );
            return None;
        }
        match host::parse_configured(&text.value) {
            Ok(parsed) if parsed.port.is_none() => Some(parsed.name.into_owned()),
            _ => {
                cx.error(
                    &text.span,
                    format!(
                        "`site.upstream_sni` {} is not a host name without port",
                        text.shown()
                    ),
                );
                None
            }
        }
    });

    let default_access = table
        .string(cx, "default_access")
        .and_then(|text| {
            choice(
                cx,
                "site.default_access",
                &text,
                &["anonymous", "authenticated", "deny"],
            )
        })
        .and_then(simple_access)
        .unwrap_or(Access::Authenticated);
    let case_insensitive = table
        .string(cx, "path_case")
        .and_then(|text| choice(cx, "site.path_case", &text, &["insensitive", "sensitive"]))
        .is_none_or(|word| word == "insensitive");

    let allow_double_encoded_separators = table
        .bool(cx, "allow_double_encoded_separators")
        .unwrap_or(false);
    let display_name = table.string(cx, "display_name").and_then(|text| {
        let value = text.value.trim().to_owned();
        if value.chars().count() > 80 || value.chars().any(char::is_control) {
            cx.error(
                &text.span,
                "`site.display_name` must be one line of at most 80 characters",
            );
            return None;
        }
        (!value.is_empty()).then_some(value)
    });
    let untrusted_headers = untrusted_headers(cx, &mut table);

    let headers = match table.table(cx, "headers") {
        Some(table) => {
            let overrides = read_headers(cx, table);
            global_headers.clone().apply(cx, overrides)
        }
        None => global_headers.clone(),
    };

    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_spans: Vec<Range<usize>> = Vec::new();
    for rule_table in table.tables(cx, "rule") {
        let Some((rule, span)) = rule(cx, rule_table) else {
            continue;
        };
        let stem = |prefix: &str| {
            let stem = prefix.trim_end_matches('/');
            if case_insensitive {
                stem.to_ascii_lowercase()
            } else {
                stem.to_owned()
            }
        };
        if let Some(earlier) = rules
            .iter()
            .position(|r| stem(&r.prefix) == stem(&rule.prefix))
        {
            let line = rule_spans.get(earlier).map_or(0, |s| cx.report.line_of(s));
            cx.error(
                &span,
                format!(
                    "rule path \"{}\" duplicates the rule on line {line}",
                    rule.prefix
                ),
            );
            continue;
        }
        rules.push(rule);
        rule_spans.push(span);
    }
    table.finish(cx);

    ReadSite {
        site: Site {
            name: name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
            hosts,
            upstreams,
            upstream_tls,
            upstream_sni,
            rules: AccessRules::new(rules, default_access, case_insensitive),
            allow_double_encoded_separators,
            untrusted_headers,
            headers: headers.names,
            display_name,
        },
        name_span: name.map(|n| n.span),
        host_spans,
    }
}

fn simple_access(word: &str) -> Option<Access> {
    match word {
        "anonymous" => Some(Access::Anonymous),
        "authenticated" => Some(Access::Authenticated),
        "deny" => Some(Access::Deny),
        _ => None,
    }
}

/// Resolves one upstream now, once: the gateway then never depends on DNS per request, and a
/// name that does not resolve fails `check-config` instead of the first request.
fn resolve(cx: &mut Cx<'_>, text: &Text) -> Vec<SocketAddr> {
    match text.value.as_str().to_socket_addrs() {
        Ok(addresses) => {
            let addresses: Vec<SocketAddr> = addresses.collect();
            if addresses.is_empty() {
                cx.error(
                    &text.span,
                    format!("`site.upstreams`: {} resolves to no address", text.shown()),
                );
            }
            addresses
        }
        Err(error) => {
            cx.error(
                &text.span,
                format!(
                    "`site.upstreams`: cannot resolve {} (expected \"host:port\"): {error}",
                    text.shown()
                ),
            );
            Vec::new()
        }
    }
}

/// One `[[site.rule]]`, with the position of its path for the duplicate check.
fn rule(cx: &mut Cx<'_>, mut table: Table<'_, '_>) -> Option<(Rule, Range<usize>)> {
    table.require(cx, "path");
    table.require(cx, "access");
    let path = table
        .string(cx, "path")
        .filter(|text| match path_problem(&text.value) {
            Some(problem) => {
                cx.error(
                    &text.span,
                    format!("`site.rule.path` {}: {problem}", text.shown()),
                );
                false
            }
            None => true,
        });
    let access = table.string(cx, "access").and_then(|text| {
        choice(
            cx,
            "site.rule.access",
            &text,
            &["anonymous", "authenticated", "deny", "roles"],
        )
    });
    let roles = table.strings(cx, "roles");
    let span = table.span();
    table.finish(cx);

    let access = match (access?, roles) {
        ("roles", None) => {
            cx.error(
                &span,
                "`roles` is required when `access = \"roles\"` (the roles that may enter)",
            );
            return None;
        }
        ("roles", Some(roles)) => {
            if roles.value.is_empty() {
                cx.error(&roles.span, "`site.rule.roles` must list at least one role");
                return None;
            }
            let mut names = Vec::with_capacity(roles.value.len());
            for role in roles.value {
                if role.value.trim().is_empty() {
                    cx.error(
                        &role.span,
                        "`site.rule.roles` must not contain an empty role",
                    );
                } else {
                    names.push(role.value);
                }
            }
            Access::Roles(names)
        }
        (word, Some(roles)) => {
            cx.error(
                &roles.span,
                format!("`roles` is only allowed with `access = \"roles\"`, not \"{word}\""),
            );
            return None;
        }
        (word, None) => simple_access(word)?,
    };
    let path = path?;
    Some((
        Rule {
            prefix: path.value,
            access,
        },
        path.span,
    ))
}

/// Why a rule path can never do what it says, if it cannot.
fn path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("must start with '/'".to_owned());
    }
    if path.contains(['?', '#']) {
        return Some("must be a path only, without '?' or '#'".to_owned());
    }
    let lower = path.to_ascii_lowercase();
    if lower == RESERVED_PREFIX || lower.starts_with(&format!("{RESERVED_PREFIX}/")) {
        return Some(format!(
            "{RESERVED_PREFIX}/ is reserved for the gateway's own pages"
        ));
    }
    // Rules are matched against canonical request paths, so a prefix that is not canonical
    // itself ("/a//b", "/a/../b", "/%41") would silently never match.
    match menshen_policies::path::normalize(path) {
        Ok(normalized) => {
            let canonical = normalized.as_str();
            if canonical.trim_end_matches('/') == path.trim_end_matches('/') {
                None
            } else {
                Some(format!(
                    "is not in canonical form and would never match; write \"{canonical}\""
                ))
            }
        }
        Err(error) => Some(error.to_string()),
    }
}
