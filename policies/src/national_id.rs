//! Taiwan's personal ID numbers as a person types them for the mobile citizen certificate
//! (行動自然人憑證): the national ID (身分證字號, `A123456789`) and the resident certificate
//! number (居留證號), in its 2021 form (`A800000014`, same shape as a national ID) and its
//! older two-letter form (`AB12345678`).
//!
//! Checked here, before any call to MOI, so a typo gets an answer at once and never becomes
//! a push prompt on somebody else's phone. The check digit catches most single wrong digits
//! (not all: the weights 2, 4, 5, 6 and 8 miss some) and most swaps of neighbours.

/// Why a typed ID number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdNumberError {
    /// Not ten characters of the form `A123456789`, `A800000014` or `AB12345678`.
    Format,
    /// The shape is right but the check digit is not.
    CheckDigit,
}

/// The number a letter stands for in the check-digit sum (the registration area codes,
/// A = 10 … Z = 33; I, O, W, Z sit out of order because they were added later).
fn letter_value(c: u8) -> Option<u32> {
    const VALUES: [u32; 26] = [
        10, 11, 12, 13, 14, 15, 16, 17, 34, 18, 19, 20, 21, 22, 35, 23, 24, 25, 26, 27, 28, 29, 32,
        30, 31, 33,
    ];
    c.is_ascii_uppercase()
        .then(|| VALUES[usize::from(c - b'A')])
}

/// Upper-cases and trims what the person typed, then checks the form and the check digit.
/// Returns the canonical number (what MOI is sent and what a binding is keyed on).
pub fn parse(typed: &str) -> Result<String, IdNumberError> {
    let id: String = typed.trim().to_ascii_uppercase();
    let b = id.as_bytes();
    if b.len() != 10 || !b[2..].iter().all(u8::is_ascii_digit) {
        return Err(IdNumberError::Format);
    }
    let area = letter_value(b[0]).ok_or(IdNumberError::Format)?;
    // The second character: 1/2 (national ID), 8/9 (2021 resident certificate), or a
    // letter A-D (the older resident certificate), which counts with its last digit.
    let second = match b[1] {
        b'1' | b'2' | b'8' | b'9' => u32::from(b[1] - b'0'),
        b'A'..=b'D' => letter_value(b[1]).ok_or(IdNumberError::Format)? % 10,
        _ => return Err(IdNumberError::Format),
    };
    let digits = b[2..].iter().map(|d| u32::from(d - b'0'));
    let mut sum = area / 10 + (area % 10) * 9 + second * 8;
    for (d, weight) in digits.zip([7, 6, 5, 4, 3, 2, 1, 1]) {
        sum += d * weight;
    }
    if sum % 10 == 0 {
        Ok(id)
    } else {
        Err(IdNumberError::CheckDigit)
    }
}

/// The last four characters, which MOICA certificates carry as attribute
/// 2.16.886.1.100.2.51.
pub fn last_four(id: &str) -> &str {
    id.len()
        .checked_sub(4)
        .and_then(|start| id.get(start..))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_valid_numbers_pass() {
        for id in [
            "A123456789",
            "F131104093",
            "B223456782",
            "C123456781",
            "D123456782",
        ] {
            assert_eq!(parse(id), Ok(id.to_string()), "{id}");
        }
        // Lower case and spaces around are what people type.
        assert_eq!(parse("  a123456789 "), Ok("A123456789".into()));
    }

    #[test]
    fn resident_certificate_numbers_pass() {
        // 2021 form: second digit 8 (male) or 9 (female).
        assert_eq!(parse("A800000014"), Ok("A800000014".into()));
        // Older form: a second letter.
        assert_eq!(parse("AC01234567"), Ok("AC01234567".into()));
    }

    #[test]
    fn every_single_wrong_last_digit_is_caught() {
        for last in b'0'..=b'9' {
            let id = format!("A12345678{}", last as char);
            let expected = if last == b'9' {
                Ok(id.clone())
            } else {
                Err(IdNumberError::CheckDigit)
            };
            assert_eq!(parse(&id), expected, "{id}");
        }
    }

    #[test]
    fn wrong_shapes_are_format_errors() {
        for id in [
            "",
            "A12345678",
            "A1234567890",
            "1123456789",
            "A323456789",
            "AE12345678",
            "A12345678X",
            "Ａ123456789",
            "A12345\u{0663}789",
        ] {
            assert_eq!(parse(id), Err(IdNumberError::Format), "{id:?}");
        }
    }

    #[test]
    fn last_four_of_an_id() {
        assert_eq!(last_four("A123456789"), "6789");
        assert_eq!(last_four("abc"), "");
    }
}
