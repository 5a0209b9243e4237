//! Folding a stream's events into the state its decisions read.

use chrono::{DateTime, Utc};
use events::{EncryptedCredentials, Event, ProviderId, ProviderKind, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::CallLimits;

/// Where an event sits, for folding: the envelope fields state cares about.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub tenant_id: TenantId,
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
}

/// A provider stream folded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderState {
    pub tenant_id: TenantId,
    /// 0 while the stream does not exist.
    pub version: i64,
    pub kind: Option<ProviderKind>,
    pub label: String,
    pub credentials: Option<EncryptedCredentials>,
    pub deleted: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ProviderState {
    pub fn apply(&mut self, at: At, event: &Event) {
        self.version = at.version;
        self.updated_at = Some(at.recorded_at);
        match event {
            Event::ProviderCreated(e) => {
                self.tenant_id = at.tenant_id;
                self.kind = Some(e.provider);
                self.label = e.label.clone();
                self.credentials = Some(e.credentials.clone());
                self.created_at = Some(at.recorded_at);
            }
            Event::ProviderRelabeled(e) => self.label = e.label.clone(),
            Event::ProviderCredentialsRotated(e) => self.credentials = Some(e.credentials.clone()),
            Event::ProviderDeleted(_) => self.deleted = true,
            _ => {}
        }
    }

    /// Exists and belongs to `tenant`.
    pub fn visible_to(&self, tenant: TenantId) -> bool {
        self.kind.is_some() && !self.deleted && self.tenant_id == tenant
    }
}

/// A number stream folded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberState {
    pub tenant_id: TenantId,
    pub version: i64,
    pub e164: String,
    pub provider: Option<ProviderKind>,
    pub credentials_id: ProviderId,
    pub agent_id: Option<Uuid>,
    pub inbound_enabled: bool,
    pub outbound_enabled: bool,
    /// The number's own daily call cap, if it has one.
    pub daily_calls_max: Option<u32>,
    pub released: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl NumberState {
    pub fn apply(&mut self, at: At, event: &Event) {
        self.version = at.version;
        self.updated_at = Some(at.recorded_at);
        match event {
            Event::NumberAttached(e) => {
                self.tenant_id = at.tenant_id;
                self.e164 = e.e164.clone();
                self.provider = Some(e.provider);
                self.credentials_id = e.credentials_id;
                self.agent_id = e.agent_id;
                self.inbound_enabled = e.inbound_enabled;
                self.outbound_enabled = e.outbound_enabled;
                self.created_at = Some(at.recorded_at);
            }
            Event::NumberAgentAssigned(e) => self.agent_id = e.agent_id,
            Event::NumberDirectionsChanged(e) => {
                self.inbound_enabled = e.inbound_enabled;
                self.outbound_enabled = e.outbound_enabled;
            }
            Event::NumberDailyCapSet(e) => self.daily_calls_max = e.daily_calls_max,
            Event::NumberReleased(_) => self.released = true,
            _ => {}
        }
    }

    pub fn visible_to(&self, tenant: TenantId) -> bool {
        self.provider.is_some() && !self.released && self.tenant_id == tenant
    }
}

/// A tenant's call_limits stream folded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsState {
    pub version: i64,
    /// `None` until the tenant sets them: the configured defaults apply.
    pub limits: Option<CallLimits>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl LimitsState {
    pub fn apply(&mut self, at: At, event: &Event) {
        self.version = at.version;
        if let Event::CallLimitsUpdated(e) = event {
            self.limits = Some((*e).into());
            self.updated_at = Some(at.recorded_at);
        }
    }
}

/// Folds `events` into `S` with `apply`. Tests use this with made-up
/// positions; the gateway folds stored envelopes the same way.
pub fn fold<S: Default>(
    events: impl IntoIterator<Item = (At, Event)>,
    apply: fn(&mut S, At, &Event),
) -> S {
    let mut s = S::default();
    for (at, e) in events {
        apply(&mut s, at, &e);
    }
    s
}

/// Given-events for tests: `events` as versions 1.. of one stream of `tenant`.
pub fn given(tenant: TenantId, events: Vec<Event>) -> Vec<(At, Event)> {
    let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            (
                At {
                    tenant_id: tenant,
                    version: i as i64 + 1,
                    recorded_at: t0 + chrono::Duration::seconds(i as i64),
                },
                e,
            )
        })
        .collect()
}

/// A tenant stream folded: its data-key lifecycle. The system tenant stream
/// (`Uuid::nil()`) folds to the master keys added by rotations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantState {
    pub version: i64,
    /// The live data key, if any.
    pub key_id: Option<String>,
    pub shredded: Vec<String>,
    /// The master kid the live key was last rewrapped under, if it was.
    pub rewrapped_under: Option<String>,
    /// System stream only: master kids added by rotations, oldest first.
    pub master_keys: Vec<String>,
}

impl TenantState {
    pub fn apply(&mut self, at: At, event: &Event) {
        self.version = at.version;
        match event {
            Event::TenantKeyCreated(e) => {
                self.key_id = Some(e.key_id.clone());
                self.rewrapped_under = None;
            }
            Event::TenantKeyShredded(e) => {
                if self.key_id.as_deref() == Some(e.key_id.as_str()) {
                    self.key_id = None;
                    self.rewrapped_under = None;
                }
                self.shredded.push(e.key_id.clone());
            }
            Event::TenantKeyRewrapped(e) if self.key_id.as_deref() == Some(e.key_id.as_str()) => {
                self.rewrapped_under = Some(e.master_kid.clone());
            }
            Event::MasterKeyAdded(e) => self.master_keys.push(e.kid.clone()),
            _ => {}
        }
    }
}

/// Given-event fixture for decision tests: `+12025550123` attached on a
/// Twilio provider, both directions on, pinned to `agent`.
#[cfg(test)]
pub fn number_attached(agent: Option<Uuid>) -> Event {
    Event::NumberAttached(events::NumberAttached {
        e164: "+12025550123".into(),
        provider: ProviderKind::Twilio,
        credentials_id: ProviderId::default(),
        agent_id: agent,
        inbound_enabled: true,
        outbound_enabled: true,
    })
}
