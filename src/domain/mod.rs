//! Values that carry their own proof: once a value has one of these types,
//! it is valid. Parsing is the only way in.
//!
//! # Invariants
//! - No IO. Parsers return every problem they find, named by field.

pub mod credentials;
pub mod destination;
pub mod e164;
pub mod fields;
pub mod limits;

pub use credentials::parse_credentials;
pub use e164::E164;
pub use fields::{FieldError, Fields, PROVIDER_KINDS};
pub use limits::CallLimits;
