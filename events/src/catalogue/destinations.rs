//! Events of a tenant's destinations stream (its id is
//! `destinations_stream_id(tenant)`): where its calls may go.

use serde::{Deserialize, Serialize};

/// The tenant's destination policy after the update. Checked at admission,
/// before any cap is counted; a blocked call ends in an `OriginateRejected`
/// with dimension `destination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationsSet {
    /// ISO 3166-1 alpha-2 codes, sorted and unique; empty: every country.
    pub allowed_countries: Vec<String>,
    /// Premium-rate numbers (e.g. +1 900) are refused unless this is set.
    pub allow_premium_rate: bool,
    /// Satellite networks (+870 Inmarsat, +881 GMSS, +88216 Thuraya) are
    /// refused unless this is set.
    pub allow_satellite: bool,
}
