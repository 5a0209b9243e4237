//! Why stored data could not be read as an `Event`: shared by the catalogue
//! (decoding) and the upcasters (older versions), so neither imports the
//! other for it.

/// Why stored data could not be read as an `Event`.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{event_type} has no upcaster from schema version {version}")]
    UnknownVersion { event_type: String, version: u32 },
    #[error("{event_type} v{version} payload does not match its schema: {source}")]
    Payload {
        event_type: String,
        version: u32,
        source: serde_json::Error,
    },
}
