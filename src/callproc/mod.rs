//! The Call Processor boundary (SPEC §7): what Switchboard sends to place a
//! call, how status callbacks are signed, and a simulator of the other side.
//!
//! - `client`: `CallProcessorClient`, the one place plaintext credentials
//!   leave the process. Retries with one `Idempotency-Key` per call, so a
//!   retry can never place a second call.
//! - `signature`: the `Switchboard-Signature` header on status callbacks,
//!   signing (the simulator) and verifying (the callback endpoint).
//! - `wire`: the request body, serialized only into a zeroizing buffer.
//! - `sim`: `switchboard callproc-sim`, the contract implemented for
//!   development and tests, with injectable failures and a dial log.

pub mod client;
pub mod report;
pub mod signature;
pub mod sim;
pub(crate) mod wire;

pub use client::{CallProcessorClient, DialError, Dialed, OriginateRequest};
pub use signature::{sign, verify, SignatureError, DEFAULT_MAX_AGE_S, SIGNATURE_HEADER};
