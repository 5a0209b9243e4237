//! A place in the global order.

use serde::{Deserialize, Serialize};

/// An event's `global_position`: positions are handed out under the append
/// lock, so they increase in commit order and a reader that has seen
/// position n has seen everything below it (ARCHITECTURE.md "Global order").
/// `Position::START` is before every event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    pub global_position: i64,
}

impl Position {
    pub const START: Position = Position { global_position: 0 };

    pub fn new(global_position: i64) -> Self {
        Position { global_position }
    }

    /// An opaque cursor for APIs: the position in decimal.
    pub fn to_cursor(self) -> String {
        self.global_position.to_string()
    }

    pub fn from_cursor(s: &str) -> Option<Position> {
        // Digits only, at most 18 (what the document promises).
        if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(Position::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let p = Position::new(981);
        assert_eq!(Position::from_cursor(&p.to_cursor()), Some(p));
        assert_eq!(Position::from_cursor("x"), None);
        assert_eq!(Position::from_cursor("-2"), None);
        assert_eq!(Position::from_cursor("+2"), None);
        assert_eq!(Position::from_cursor(""), None);
    }
}
