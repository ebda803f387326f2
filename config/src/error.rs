//! Configuration problems with their position, and the collector that gathers all of them.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file.
///
/// `line` and `column` are 1-based; both are 0 when the problem is not inside the text (the
/// file could not be read), so an editor jump still lands at the top of the file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one file, ordered by position.
///
/// A list rather than the first error, because an operator fixing a file over SSH during an
/// outage should see everything that is wrong in one run of `menshen check-config`.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// The problems, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects problems while the document is walked, turning byte spans into line and column.
pub(crate) struct Report<'a> {
    file: &'a str,
    text: &'a str,
    /// Byte offset at which each line starts; computed once so every error is cheap.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file,
            text,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// Records a problem at the start of `span`.
    pub(crate) fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    /// 1-based line of a span, for messages that point back at an earlier definition.
    pub(crate) fn line_of(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }

    /// 1-based line and column of a byte offset. The column counts characters, not bytes, so
    /// it matches what an editor shows on lines with Chinese text.
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(index).copied().unwrap_or(0);
        let column = match self.text.get(start..offset) {
            Some(prefix) => prefix.chars().count(),
            None => offset - start,
        };
        (index + 1, column + 1)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The collected problems in file order; problems at the same position keep the order in
    /// which they were found.
    pub(crate) fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|e| (e.line, e.column));
        ConfigErrors(self.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\n門神 = 2\n\nz";
        let report = Report::new("f", text);
        assert_eq!(report.position(0), (1, 1));
        assert_eq!(report.position(4), (1, 5));
        assert_eq!(report.position(6), (2, 1));
        // "門神" is 6 bytes; the space after it is the third character.
        assert_eq!(report.position(12), (2, 3));
        assert_eq!(report.position(text.len() - 1), (4, 1));
    }

    #[test]
    fn display_is_one_error_per_line() {
        let errors = ConfigErrors(vec![
            ConfigError {
                file: "a.toml".into(),
                line: 3,
                column: 1,
                message: "first".into(),
            },
            ConfigError {
                file: "a.toml".into(),
                line: 7,
                column: 9,
                message: "second".into(),
            },
        ]);
        assert_eq!(errors.to_string(), "a.toml:3:1: first\na.toml:7:9: second");
    }
}
