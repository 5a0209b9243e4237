//! Audit and replay (SPEC §9): history in global order, state at a past
//! moment, hash-chain verification, projection rebuilds.
//!
//! The library functions here serve both the audit API (`gateway::audit`)
//! and `switchboard audit …` (`cli`), which is a thin shell around them.
//! Everything that walks the whole store pages through it, so memory stays
//! bounded however long the history is.

pub mod cli;
pub mod events;
pub mod output;
pub mod rebuild;
pub mod state;
pub mod verify;
