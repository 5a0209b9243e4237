//! The Switchboard event catalogue.
//!
//! This crate is the vocabulary of the system: the envelope every stored event
//! travels in, the typed payloads of schema version 1, the canonical hashing
//! that chains a stream's events together, and the upcaster through which an
//! older stored schema is read as the current one.
//!
//! # Invariants
//! - These are the only types serialized into the event store and onto NATS.
//!   A subscriber can depend on this crate alone.
//! - A type name and schema version, once released, never change meaning: new
//!   shapes get a new schema version and an upcaster from the old one.
//! - No IO, no async, no dependency on any other Switchboard crate.

pub mod canonical;
pub mod catalogue;
mod decode_error;
pub mod dimension;
pub mod envelope;
pub mod ids;
pub mod status;
pub mod stream;
pub mod upcast;

pub use catalogue::{
    call::*, call_limits::*, destinations::*, number::*, provider::*, tenant::*, DecodeError, Event,
};
pub use dimension::Dimension;
pub use envelope::{Envelope, Hash32, NewEnvelope};
pub use ids::{CallId, NumberId, ProviderId, TenantId};
pub use status::CallStatus;
pub use stream::{call_limits_stream_id, destinations_stream_id, StreamType};
