//! Menshen's configuration file: the TOML format, its validation, and the internal [`Config`]
//! the gateway runs on.
//!
//! # Layout
//!
//! - [`model`]: the validated [`Config`] and its parts; what the rest of Menshen sees.
//! - `convert`: walks the parsed document section by section and builds the [`Config`];
//!   `convert::site` holds the `[[site]]` tables and the checks across sites,
//!   `convert::headers` the identity header names.
//! - `reader`: a reader over the spanned TOML tree that records which keys were consumed, so
//!   every other key is reported as unknown.
//! - `env`, `duration`, `host`: the small value syntaxes (`${NAME}`, `"30m"`, `host:port`).
//! - [`error`]: [`ConfigError`] with file, line and column, and the collector behind it.
//!
//! The serde-style "deserialize into structs" approach is deliberately not used: it stops at
//! the first problem and loses positions. Here every problem (syntax, unknown key, wrong type,
//! bad value, missing key, cross-field conflict) is collected with its line and column, and
//! the file is refused only at the end, all problems listed at once.
//!
//! The annotated `examples/school.toml` in this crate is the configuration reference.

mod convert;
mod duration;
mod env;
pub mod error;
mod host;
pub mod model;
mod reader;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    CaptchaMode, CertificateConfig, Config, ConnectionConfig, CrlSource, ForwardAuth, HeaderNames,
    Listener, LockoutConfig, LoginConfig, MailConfig, MailPassword, MailTransport,
    MobileCertificateConfig, MobileKey, OcspMode, OidcProvider, OtpConfig, Portal, SessionConfig,
    Site, SmtpSecurity, SmtpServer, StoreConfig, TlsFiles,
};

use crate::env::Lookup;
use crate::error::Report;
use crate::reader::Cx;

/// How strictly to check things outside the text itself.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Check that TLS certificate and key files exist and are readable. On by default (and for
    /// `run` and `check-config`); off only where the files cannot exist, such as when the
    /// example configurations are checked in the test suite.
    pub check_files: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { check_files: true }
    }
}

/// Reads and validates the configuration file at `path`, with all checks on.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with_options(path, Options::default())
}

/// Reads and validates the configuration file at `path`.
///
/// A file that cannot be read is one error at line 0, carrying the I/O error.
pub fn load_with_options(path: &Path, options: Options) -> Result<Config, ConfigErrors> {
    let file_name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_with_options(&text, &file_name, options),
        Err(error) => Err(ConfigErrors(vec![ConfigError {
            file: file_name,
            line: 0,
            column: 0,
            message: format!("cannot read the configuration file: {error}"),
        }])),
    }
}

/// Validates configuration `text`, with all checks on. `file_name` only labels the errors.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    parse_with_options(text, file_name, Options::default())
}

/// Validates configuration `text`. `file_name` only labels the errors.
pub fn parse_with_options(
    text: &str,
    file_name: &str,
    options: Options,
) -> Result<Config, ConfigErrors> {
    parse_with_env(text, file_name, options, &|name| std::env::var(name))
}

/// [`parse_with_options`] with the environment supplied by the caller, so tests need not
/// change the process environment.
pub(crate) fn parse_with_env(
    text: &str,
    file_name: &str,
    options: Options,
    env: Lookup<'_>,
) -> Result<Config, ConfigErrors> {
    let mut report = Report::new(file_name, text);
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        // The tree recovered from a syntax error is a guess; checking it would report
        // problems that are not there. Report the syntax alone.
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            report.at(&span, format!("TOML syntax: {}", error.message()));
        }
        return Err(report.finish());
    }
    let mut cx = Cx {
        report,
        env,
        check_files: options.check_files,
    };
    let config = convert::convert(&document, &mut cx);
    if cx.report.is_empty() {
        Ok(config)
    } else {
        Err(cx.report.finish())
    }
}

#[cfg(test)]
mod tests;
