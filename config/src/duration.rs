//! Durations written the way operators say them: `"45s"`, `"30m"`, `"8h"`, `"1d"`, `"1h30m"`.

use std::time::Duration;

/// Parses a duration string: one or more `<number><unit>` parts, units `s`, `m`, `h`, `d`.
///
/// A bare number is refused in a string because `"30"` could mean seconds or minutes; the
/// configuration accepts a TOML integer for plain seconds instead.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let help = "expected a duration such as \"45s\", \"30m\", \"8h\", \"1d\" or \"1h30m\", \
                or an integer number of seconds";
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty duration; {help}"));
    }
    let mut total: u64 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration \"{text}\"; {help}"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("duration \"{text}\" is too long"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "" => return Err(format!("duration \"{text}\" needs a unit; {help}")),
            other => {
                return Err(format!(
                    "unknown duration unit \"{other}\" in \"{text}\"; {help}"
                ));
            }
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(seconds_per_unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("duration \"{text}\" is too long"))?;
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit_and_combinations() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn refuses_ambiguous_or_malformed_text() {
        for bad in [
            "",
            "30",
            "m",
            "5 minutes",
            "1.5h",
            "-5m",
            "3w",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
