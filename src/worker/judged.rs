//! What a call is judged and dialed by, read as stored now: the tenant's
//! caps, the calling number's own cap, the tenant's destination policy, the
//! provider's credentials and which of the tenant's data keys are shredded.
//!
//! No append checks these reads (a cap lowered to 0 must hold from the
//! moment it was accepted, wherever it was), so a cached state is not
//! enough: each is brought up to date against the store. All of them in
//! one query (`Store::stale`, `read_streams_after`, `Store::fresh`): one
//! query each was three or four of a call's eight statements. The tenant
//! stream's shredded keys let the dial use a data key kept unwrapped in
//! this process instead of reading `tenant_keys` for every call.

use events::{call_limits_stream_id, destinations_stream_id, NumberId, ProviderId, TenantId};

use super::Worker;
use crate::caps::NumberCap;
use crate::commands::set_destinations::DestinationsState;
use crate::commands::state::{LimitsState, NumberState, ProviderState, TenantState};
use crate::domain::CallLimits;
use crate::store::{read_streams_after, Seed, StoreError};

/// What admission judged a call by (the tenant's caps and the calling
/// number's own) and the provider and data keys read with them: the dial
/// right after needs not read them again. A handling that starts at the
/// claim (a redelivery) reads them fresh.
#[derive(Debug, Clone)]
pub(super) struct Judged {
    pub limits: CallLimits,
    pub number: Option<NumberCap>,
    pub provider: ProviderState,
    /// The tenant's shredded data keys (`Secrets::open_for_provider`).
    pub shredded: Vec<String>,
}

/// Which streams to read besides the tenant's caps.
pub(super) struct Reads {
    pub number: Option<NumberId>,
    pub provider: ProviderId,
    /// The tenant's destination policy (admission's; the dial has none).
    pub destinations: bool,
}

impl Worker {
    /// The caps, the provider and (when asked) the destination policy of
    /// `tenant`'s call, as stored now, in one query.
    pub(super) async fn judge(
        &self,
        tenant: TenantId,
        reads: Reads,
    ) -> anyhow::Result<(Judged, Option<DestinationsState>)> {
        let store = &self.deps.store;
        let mut limits = store.stale::<LimitsState>(call_limits_stream_id(tenant));
        let mut provider = store.stale::<ProviderState>(reads.provider);
        let mut keys = store.stale::<TenantState>(tenant.uuid());
        let mut number = reads.number.map(|n| (n, store.stale::<NumberState>(n)));
        let mut places = reads
            .destinations
            .then(|| store.stale::<DestinationsState>(destinations_stream_id(tenant)));
        let mut conn = store.kept().await?;
        // Streams this process holds no state of start from their snapshots
        // (a query only then: after a restart, not per call).
        let mut stales: Vec<&mut dyn Seed> = vec![&mut limits, &mut provider, &mut keys];
        stales.extend(number.as_mut().map(|(_, s)| s as &mut dyn Seed));
        stales.extend(places.as_mut().map(|s| s as &mut dyn Seed));
        let seeded = store.seed(&mut *conn, &mut stales).await;
        let newer = match seeded {
            Ok(()) => {
                let mut after = vec![limits.after(), provider.after(), keys.after()];
                after.extend(number.as_ref().map(|(_, s)| s.after()));
                after.extend(places.as_ref().map(|s| s.after()));
                read_streams_after(&mut *conn, &after).await
            }
            Err(e) => Err(e),
        };
        conn.give_back(newer.as_ref().err().and_then(StoreError::db));
        let newer = newer?;
        let limits = store.fresh(limits, &newer, LimitsState::apply)?.state;
        let provider = store.fresh(provider, &newer, ProviderState::apply)?.state;
        let keys = store.fresh(keys, &newer, TenantState::apply)?.state;
        // A key kept unwrapped and since shredded goes now, not at eviction.
        self.secrets.forget(tenant, &keys.shredded);
        let number = match number {
            Some((number_id, stale)) => Some(NumberCap {
                number_id,
                daily_calls_max: store
                    .fresh(stale, &newer, NumberState::apply)?
                    .state
                    .daily_calls_max,
            }),
            None => None,
        };
        let places = match places {
            Some(stale) => Some(store.fresh(stale, &newer, DestinationsState::apply)?.state),
            None => None,
        };
        let judged = Judged {
            limits: limits.limits.unwrap_or(self.default_limits),
            number,
            provider,
            shredded: keys.shredded,
        };
        Ok((judged, places))
    }
}
