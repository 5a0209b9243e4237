//! A call's status: the one list, spelled once. The projection stores it,
//! the API shows and filters by it, callbacks report a subset of it.

use serde::{Deserialize, Serialize};

/// Where a call stands, as the calls table and the API show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Requested,
    Rejected,
    Dispatched,
    Ringing,
    Answered,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    pub const ALL: [CallStatus; 10] = [
        CallStatus::Requested,
        CallStatus::Rejected,
        CallStatus::Dispatched,
        CallStatus::Ringing,
        CallStatus::Answered,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    /// What a Call Processor may report in a status callback.
    pub const CALLBACK: [CallStatus; 7] = [
        CallStatus::Ringing,
        CallStatus::Answered,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Requested => "requested",
            CallStatus::Rejected => "rejected",
            CallStatus::Dispatched => "dispatched",
            CallStatus::Ringing => "ringing",
            CallStatus::Answered => "answered",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Failed => "failed",
            CallStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Statuses only move forward by rank; rank 4 is an end, and the first
    /// end is final.
    pub fn rank(self) -> i32 {
        match self {
            CallStatus::Requested => 0,
            CallStatus::Dispatched => 1,
            CallStatus::Ringing => 2,
            CallStatus::Answered => 3,
            _ => 4,
        }
    }

    /// An end state (`CallEnded` may carry these).
    pub fn is_end(self) -> bool {
        self.rank() == 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_by_name_and_through_serde() {
        for s in CallStatus::ALL {
            assert_eq!(CallStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(CallStatus::parse("no-answer"), None);
        assert!(CallStatus::CALLBACK.iter().all(|s| s.rank() >= 2));
    }
}
