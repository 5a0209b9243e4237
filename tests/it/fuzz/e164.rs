//! E.164: `+`, 7 to 15 ASCII digits, the first not 0; nothing else.

use proptest::prelude::*;
use switchboard::domain::E164;

use super::nasty_string;

fn oracle(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
}

proptest! {
    #[test]
    fn e164_accepts_exactly_the_numbers(s in nasty_string(20)) {
        prop_assert_eq!(E164::parse(&s).is_ok(), oracle(&s), "{:?}", s);
    }

    #[test]
    fn e164_accepts_every_valid_number_unchanged(s in "\\+[1-9][0-9]{6,14}") {
        let n = E164::parse(&s).expect("valid");
        prop_assert_eq!(n.as_str(), s.as_str());
    }
}
