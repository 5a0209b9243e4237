//! The ids of the things Switchboard keeps: one newtype per kind, so a call
//! id can never be passed where a tenant id is expected.
//!
//! Each serializes exactly as the bare UUID it wraps (`#[serde(transparent)]`),
//! so the stored events, their hash chain and the API are unchanged by the
//! types. With the `sqlx` feature each also binds and decodes as a PostgreSQL
//! `uuid`.
//!
//! A stream id stays a bare `Uuid` in the envelope: it names a stream of any
//! type, and `From` turns each id into the stream id it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(Uuid);

        impl $name {
            /// A new id: UUIDv7, roughly time-ordered for index locality.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            pub const fn from_uuid(id: Uuid) -> Self {
                $name(id)
            }

            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// The 16 bytes, for additional authenticated data and keys.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                $name(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl PartialEq<Uuid> for $name {
            fn eq(&self, other: &Uuid) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::from_str(s).map($name)
            }
        }
    };
}

id! {
    /// A tenant: the owner of providers, numbers, calls and caps. The JWT's
    /// `tenant_id` claim; every envelope carries one.
    TenantId
}

id! {
    /// A provider (carrier credentials). Also its stream id and, in events,
    /// `credentials_id`.
    ProviderId
}

id! {
    /// An attached phone number. Also its stream id.
    NumberId
}

id! {
    /// One outbound call. Also its stream id.
    CallId
}

impl TenantId {
    /// The system tenant (`Uuid::nil()`): owner of the keyring stream, never
    /// a JWT's tenant.
    pub const SYSTEM: TenantId = TenantId(Uuid::nil());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_bare_uuid() {
        let u = Uuid::now_v7();
        let id = CallId::from(u);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::to_value(u).unwrap()
        );
        let back: CallId = serde_json::from_value(serde_json::to_value(u).unwrap()).unwrap();
        assert_eq!(back, id);
        assert_eq!(id.to_string(), u.to_string());
        assert_eq!(u.to_string().parse::<CallId>().unwrap(), id);
    }
}
