//! A place in the global order.

use serde::{Deserialize, Serialize};

/// The global order is (transaction id, global_position): see ARCHITECTURE.md.
/// `Position::START` is before every event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    pub transaction_id: i64,
    pub global_position: i64,
}

impl Position {
    pub const START: Position = Position {
        transaction_id: 0,
        global_position: 0,
    };

    pub fn new(transaction_id: i64, global_position: i64) -> Self {
        Position {
            transaction_id,
            global_position,
        }
    }

    /// An opaque cursor for APIs: `<transaction>-<position>`.
    pub fn to_cursor(self) -> String {
        format!("{}-{}", self.transaction_id, self.global_position)
    }

    pub fn from_cursor(s: &str) -> Option<Position> {
        let (t, p) = s.split_once('-')?;
        let (t, p) = (t.parse().ok()?, p.parse().ok()?);
        if t < 0 || p < 0 {
            return None;
        }
        Some(Position::new(t, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let p = Position::new(981, 12);
        assert_eq!(Position::from_cursor(&p.to_cursor()), Some(p));
        assert_eq!(Position::from_cursor("x-1"), None);
        assert_eq!(Position::from_cursor("-1-2"), None);
    }

    #[test]
    fn orders_by_transaction_first() {
        assert!(Position::new(2, 1) > Position::new(1, 99));
    }
}
