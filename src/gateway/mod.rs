//! The HTTP gateway (in progress).

pub mod error;
pub mod json;
