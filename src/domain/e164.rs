//! E.164 phone numbers.

use std::fmt;

/// `+` then 7 to 15 digits, the first not 0. The carrier checks the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    pub fn parse(s: &str) -> Result<E164, &'static str> {
        let Some(digits) = s.strip_prefix('+') else {
            return Err("must start with +");
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be + followed by digits only");
        }
        if !(7..=15).contains(&digits.len()) {
            return Err("must have 7 to 15 digits");
        }
        if digits.starts_with('0') {
            return Err("the first digit must not be 0");
        }
        Ok(E164(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_numbers() {
        for ok in ["+12025550123", "+4412345", "+123456789012345"] {
            assert_eq!(E164::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_the_seed_cases() {
        for bad in [
            "12025550123",       // no +
            "+123456",           // 6 digits
            "+1234567890123456", // 16 digits
            "+1202555abcd",      // letters
            "+02025550123",      // leading 0
            "+",
            "",
            "+1 202 555 0123",
        ] {
            assert!(E164::parse(bad).is_err(), "{bad:?}");
        }
    }
}
