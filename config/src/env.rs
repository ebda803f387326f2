//! `${NAME}` substitution from the environment, so secrets stay out of the configuration file.

use std::env::VarError;

/// Looks up one environment variable; a function so tests need not touch the real process
/// environment (which is shared by all threads of the test binary).
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// A string after substitution.
pub(crate) struct Substituted {
    pub(crate) value: String,
    /// Whether any `${NAME}` was replaced. Such a value may hold a secret, so error messages
    /// must not quote it.
    pub(crate) from_env: bool,
}

/// Replaces every `${NAME}` with the variable's value and every `$$` with `$`.
///
/// Any other `$` is an error rather than a literal: a shell habit such as `$DB_PASSWORD` would
/// otherwise silently become part of a password. The messages name variables, never values.
pub(crate) fn substitute(text: &str, lookup: Lookup<'_>) -> Result<Substituted, Vec<String>> {
    if !text.contains('$') {
        return Ok(Substituted {
            value: text.to_owned(),
            from_env: false,
        });
    }
    let mut value = String::with_capacity(text.len());
    let mut from_env = false;
    let mut problems = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        value.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            value.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(close) = tail.find('}') else {
                problems.push("unterminated `${` (write `$$` for a literal `$`)".to_owned());
                rest = "";
                break;
            };
            let name = &tail[..close];
            rest = &tail[close + 1..];
            if !is_variable_name(name) {
                problems.push(format!(
                    "`${{{name}}}` is not a valid environment variable reference \
                     (names are letters, digits and `_`, not starting with a digit)"
                ));
                continue;
            }
            match lookup(name) {
                Ok(found) => {
                    value.push_str(&found);
                    from_env = true;
                }
                Err(VarError::NotPresent) => {
                    problems.push(format!("environment variable `{name}` is not set"));
                }
                Err(VarError::NotUnicode(_)) => {
                    problems.push(format!("environment variable `{name}` is not valid UTF-8"));
                }
            }
        } else {
            problems.push(
                "`$` must start `${NAME}` (an environment variable) or be doubled as `$$`"
                    .to_owned(),
            );
            rest = after;
        }
    }
    value.push_str(rest);
    if problems.is_empty() {
        Ok(Substituted { value, from_env })
    } else {
        Err(problems)
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "DB_PASSWORD" => Ok("s3cr$t".to_owned()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    fn run(text: &str) -> Result<String, Vec<String>> {
        substitute(text, &env).map(|s| s.value)
    }

    #[test]
    fn replaces_variables_and_doubled_dollars() {
        assert_eq!(
            run("postgres://m:${DB_PASSWORD}@db/m").as_deref(),
            Ok("postgres://m:s3cr$t@db/m")
        );
        assert_eq!(run("NT$$500${EMPTY}").as_deref(), Ok("NT$500"));
        assert_eq!(run("plain").as_deref(), Ok("plain"));
    }

    #[test]
    fn marks_values_that_came_from_the_environment() {
        assert!(substitute("${EMPTY}", &env).is_ok_and(|s| s.from_env));
        assert!(substitute("$$", &env).is_ok_and(|s| !s.from_env));
    }

    #[test]
    fn reports_every_missing_variable_by_name_only() {
        let problems = run("${A}-${DB_PASSWORD}-${B}").unwrap_err();
        assert_eq!(
            problems,
            vec![
                "environment variable `A` is not set",
                "environment variable `B` is not set"
            ]
        );
        assert!(!problems.iter().any(|p| p.contains("s3cr")));
    }

    #[test]
    fn rejects_stray_dollars_and_bad_references() {
        assert!(run("$HOME").is_err());
        assert!(run("trailing $").is_err());
        assert!(run("${UNCLOSED").is_err());
        assert!(run("${1BAD}").is_err());
        assert!(run("${}").is_err());
    }
}
