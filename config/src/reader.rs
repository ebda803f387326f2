//! A reader over the spanned TOML tree that remembers which keys were asked for, so that any
//! other key can be reported as unknown together with the valid ones.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::duration::parse_duration;
use crate::env::{Lookup, substitute};
use crate::error::Report;

/// What the conversion needs besides the tree: where problems go and how the outside world is
/// consulted (environment, file system).
pub(crate) struct Cx<'a> {
    pub(crate) report: Report<'a>,
    pub(crate) env: Lookup<'a>,
    pub(crate) check_files: bool,
}

impl Cx<'_> {
    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.report.at(span, message);
    }
}

/// A value with the place it was written, for errors found after reading it.
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

/// A string value after `${NAME}` substitution.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub(crate) value: String,
    pub(crate) span: Range<usize>,
    /// Set when part of the value came from the environment; see [`Text::shown`].
    pub(crate) from_env: bool,
}

impl Text {
    /// How an error message refers to this value: quoted, unless it came from the
    /// environment and may therefore hold a secret.
    pub(crate) fn shown(&self) -> String {
        if self.from_env {
            "the value (after environment substitution)".to_owned()
        } else {
            format!("\"{}\"", self.value)
        }
    }
}

/// One TOML table being read.
pub(crate) struct Table<'t, 'i> {
    /// Dotted name for messages (`"site.rule"`); empty for the document itself.
    path: String,
    table: &'t DeTable<'i>,
    span: Range<usize>,
    /// Every key the conversion asked for, present or not: these are the valid keys.
    asked: Vec<&'static str>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub(crate) fn root(document: &'t Spanned<DeTable<'i>>) -> Self {
        Self::new(String::new(), document.get_ref(), document.span())
    }

    fn new(path: String, table: &'t DeTable<'i>, span: Range<usize>) -> Self {
        Self {
            path,
            table,
            span,
            asked: Vec::new(),
        }
    }

    /// Where the table starts (its `[header]`), for problems that concern the whole table.
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The dotted name of `key` in this table, as shown in messages.
    pub(crate) fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        self.table.get(key)
    }

    /// Reports `key` as missing when it is absent; returns whether it is present.
    pub(crate) fn require(&mut self, cx: &mut Cx<'_>, key: &'static str) -> bool {
        if self.get(key).is_some() {
            return true;
        }
        let message = if self.path.is_empty() {
            format!("missing required top-level `{key}`")
        } else {
            format!("missing required key `{key}` in [{}]", self.path)
        };
        cx.error(&self.span, message);
        false
    }

    fn wrong_type(&self, cx: &mut Cx<'_>, key: &str, value: &Spanned<DeValue<'_>>, want: &str) {
        cx.error(
            &value.span(),
            format!(
                "`{}` must be {want}, found {}",
                self.name(key),
                article(value.get_ref().type_str())
            ),
        );
    }

    pub(crate) fn string(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Text> {
        let value = self.get(key)?;
        match value.get_ref().as_str() {
            Some(_) => string_value(cx, &self.name(key), value),
            None => {
                self.wrong_type(cx, key, value, "a string");
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<bool> {
        let value = self.get(key)?;
        let found = value.get_ref().as_bool();
        if found.is_none() {
            self.wrong_type(cx, key, value, "true or false");
        }
        found
    }

    /// An integer within `range` (inclusive), reported with the range when outside it.
    pub(crate) fn integer(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<At<i64>> {
        let value = self.get(key)?;
        let Some(integer) = value.get_ref().as_integer() else {
            self.wrong_type(cx, key, value, "an integer");
            return None;
        };
        let parsed = i64::from_str_radix(integer.as_str(), integer.radix())
            .ok()
            .filter(|n| range.contains(n));
        if parsed.is_none() {
            cx.error(
                &value.span(),
                format!(
                    "`{}` must be between {} and {}",
                    self.name(key),
                    range.start(),
                    range.end()
                ),
            );
        }
        parsed.map(|value_| At {
            value: value_,
            span: value.span(),
        })
    }

    /// A positive duration: integer seconds or a string such as `"30m"`.
    pub(crate) fn duration(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<At<Duration>> {
        self.duration_from(cx, key, false)
    }

    /// A duration that may be zero (a tolerance, where none is a valid choice).
    pub(crate) fn duration_or_zero(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
    ) -> Option<At<Duration>> {
        self.duration_from(cx, key, true)
    }

    fn duration_from(
        &mut self,
        cx: &mut Cx<'_>,
        key: &'static str,
        zero_ok: bool,
    ) -> Option<At<Duration>> {
        let value = self.get(key)?;
        let span = value.span();
        let parsed = match value.get_ref() {
            DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .map(Duration::from_secs)
                .ok_or_else(|| "must not be negative".to_owned()),
            DeValue::String(_) => {
                let text = string_value(cx, &self.name(key), value)?;
                parse_duration(&text.value)
            }
            _ => {
                self.wrong_type(cx, key, value, "a duration (\"30m\") or integer seconds");
                return None;
            }
        };
        match parsed {
            Ok(duration) if duration.is_zero() && !zero_ok => {
                cx.error(
                    &span,
                    format!("`{}` must be longer than zero", self.name(key)),
                );
                None
            }
            Ok(duration) => Some(At {
                value: duration,
                span,
            }),
            Err(problem) => {
                cx.error(&span, format!("`{}`: {problem}", self.name(key)));
                None
            }
        }
    }

    /// An array of strings. Items of the wrong type are reported one by one and skipped.
    pub(crate) fn strings(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<At<Vec<Text>>> {
        let value = self.get(key)?;
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(cx, key, value, "an array of strings");
            return None;
        };
        let name = self.name(key);
        let mut texts = Vec::with_capacity(items.len());
        for item in items.iter() {
            if item.get_ref().as_str().is_some() {
                texts.extend(string_value(cx, &name, item));
            } else {
                cx.error(
                    &item.span(),
                    format!(
                        "`{name}` must contain only strings, found {}",
                        article(item.get_ref().type_str())
                    ),
                );
            }
        }
        Some(At {
            value: texts,
            span: value.span(),
        })
    }

    /// A nested table, written as `[a.b]` or inline as `b = { … }`.
    pub(crate) fn table(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Option<Table<'t, 'i>> {
        let value = self.get(key)?;
        match value.get_ref().as_table() {
            Some(table) => Some(Table::new(self.name(key), table, value.span())),
            None => {
                self.wrong_type(cx, key, value, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[key]]`); absent means empty.
    pub(crate) fn tables(&mut self, cx: &mut Cx<'_>, key: &'static str) -> Vec<Table<'t, 'i>> {
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let Some(items) = value.get_ref().as_array() else {
            self.wrong_type(cx, key, value, &format!("an array of tables ([[{key}]])"));
            return Vec::new();
        };
        let name = self.name(key);
        let mut tables = Vec::with_capacity(items.len());
        for item in items.iter() {
            match item.get_ref().as_table() {
                Some(table) => tables.push(Table::new(name.clone(), table, item.span())),
                None => cx.error(
                    &item.span(),
                    format!(
                        "`{name}` must contain only tables, found {}",
                        article(item.get_ref().type_str())
                    ),
                ),
            }
        }
        tables
    }

    /// Reports every key that no reader asked for, naming the keys that are valid here.
    pub(crate) fn finish(self, cx: &mut Cx<'_>) {
        let mut valid = self.asked.clone();
        valid.sort_unstable();
        let valid = valid.join(", ");
        for (key, _) in self.table.iter() {
            if self.asked.contains(&key.get_ref().as_ref()) {
                continue;
            }
            let message = if self.path.is_empty() {
                format!("unknown top-level key `{}` (valid: {valid})", key.get_ref())
            } else {
                format!(
                    "unknown key `{}` in [{}] (valid: {valid})",
                    key.get_ref(),
                    self.path
                )
            };
            cx.error(&key.span(), message);
        }
    }
}

/// Substitutes the environment into a string value, reporting each problem at the value.
fn string_value(cx: &mut Cx<'_>, name: &str, value: &Spanned<DeValue<'_>>) -> Option<Text> {
    let raw = value.get_ref().as_str()?;
    match substitute(raw, cx.env) {
        Ok(done) => Some(Text {
            value: done.value,
            span: value.span(),
            from_env: done.from_env,
        }),
        Err(problems) => {
            for problem in problems {
                cx.error(&value.span(), format!("`{name}`: {problem}"));
            }
            None
        }
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "integer" | "array" => format!("an {type_name}"),
        other => format!("a {other}"),
    }
}
