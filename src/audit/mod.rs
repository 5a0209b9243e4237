//! Audit and replay (SPEC §9): history in global order, state at a past
//! moment, hash-chain verification, projection rebuilds.

pub mod cli;
