//! SetDestinations (PUT /destinations): where a tenant's calls may go, and
//! the rule that judges each call against it at admission.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::TenantId;
use events::{destinations_stream_id, BlockedDestination, DestinationsSet, Event, StreamType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::At;
use super::{check_if_match, Rejection};
use crate::domain::destination::{classify, is_country};
use crate::domain::{FieldError, Fields, E164};
use crate::store::{Loaded, StoreError};
use crate::write::{Command, Decision, Reader};

/// The most countries one allowlist may name (there are fewer than 250).
pub const MAX_COUNTRIES: usize = 250;

/// A tenant's destinations stream folded. Never set: every country, no
/// premium-rate and no satellite numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationsState {
    pub version: i64,
    pub policy: Option<DestinationsSet>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl DestinationsState {
    pub fn apply(&mut self, at: At, event: &Event) {
        self.version = at.version;
        if let Event::DestinationsSet(e) = event {
            self.policy = Some(e.clone());
            self.updated_at = Some(at.recorded_at);
        }
    }

    /// The policy in force: the tenant's, or the default.
    pub fn in_force(&self) -> DestinationsSet {
        self.policy.clone().unwrap_or(DestinationsSet {
            allowed_countries: Vec::new(),
            allow_premium_rate: false,
            allow_satellite: false,
        })
    }
}

/// Why `policy` refuses a call to `to`, if it does: satellite first, then
/// premium rate, then the country allowlist.
pub fn blocked(policy: &DestinationsSet, to: &E164) -> Option<BlockedDestination> {
    let d = classify(to);
    let rule = if d.satellite && !policy.allow_satellite {
        "satellite"
    } else if d.premium_rate && !policy.allow_premium_rate {
        "premium_rate"
    } else if !policy.allowed_countries.is_empty()
        && policy.allowed_countries.binary_search(&d.country).is_err()
    {
        "country_not_allowed"
    } else {
        return None;
    };
    Some(BlockedDestination {
        country: d.country,
        rule: rule.to_owned(),
    })
}

#[derive(Debug, Clone)]
pub struct SetDestinations {
    pub tenant_id: TenantId,
    pub policy: DestinationsSet,
    pub if_match: Option<i64>,
}

impl SetDestinations {
    /// The PUT body: every field required, every bad one named at once.
    pub fn parse(
        body: &Map<String, Value>,
        tenant_id: TenantId,
        if_match: Option<i64>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::new(body);
        f.deny_unknown(&["allowed_countries", "allow_premium_rate", "allow_satellite"]);
        let countries = countries(&mut f);
        let premium = f.opt_bool("allow_premium_rate");
        let satellite = f.opt_bool("allow_satellite");
        for (key, v) in [
            ("allow_premium_rate", premium),
            ("allow_satellite", satellite),
        ] {
            if v.is_none() && !body.contains_key(key) {
                f.error(key, "is required");
            }
        }
        f.finish()?;
        let (Some(allowed_countries), Some(allow_premium_rate), Some(allow_satellite)) =
            (countries, premium, satellite)
        else {
            return Err(vec![FieldError::new("body", "is incomplete")]);
        };
        Ok(SetDestinations {
            tenant_id,
            policy: DestinationsSet {
                allowed_countries,
                allow_premium_rate,
                allow_satellite,
            },
            if_match,
        })
    }
}

/// `allowed_countries`: ISO 3166-1 alpha-2 codes, sorted and deduplicated.
fn countries(f: &mut Fields<'_>) -> Option<Vec<String>> {
    const KEY: &str = "allowed_countries";
    let Some(raw) = f.raw(KEY).cloned() else {
        f.error(KEY, "is required");
        return None;
    };
    let Some(items) = raw.as_array().filter(|a| a.len() <= MAX_COUNTRIES) else {
        f.error(KEY, "must be an array of at most 250 country codes");
        return None;
    };
    let mut codes = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str().filter(|c| is_country(c)) {
            Some(c) => codes.push(c.to_owned()),
            None => {
                f.error(
                    KEY,
                    "must hold ISO 3166-1 alpha-2 codes in capitals, such as US",
                );
                return None;
            }
        }
    }
    codes.sort();
    codes.dedup();
    Some(codes)
}

/// The events of `cmd` on `state`: none when the policy is already in force
/// as the tenant set it.
pub fn decide(state: &DestinationsState, cmd: SetDestinations) -> Result<Vec<Event>, Rejection> {
    check_if_match(cmd.if_match, state.version)?;
    if state.policy.as_ref() == Some(&cmd.policy) {
        return Ok(Vec::new());
    }
    Ok(vec![Event::DestinationsSet(cmd.policy)])
}

#[async_trait]
impl Command for SetDestinations {
    type State = Loaded<DestinationsState>;

    async fn load(&self, r: &Reader<'_>) -> Result<Self::State, StoreError> {
        r.load(
            destinations_stream_id(self.tenant_id),
            DestinationsState::apply,
        )
        .await
    }

    fn decide(&self, s: &Self::State) -> Result<Decision, Rejection> {
        let events = decide(&s.state, self.clone())?;
        let id = destinations_stream_id(self.tenant_id);
        Ok(Decision::one(
            StreamType::Destinations,
            id,
            s.head.version,
            events,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::state::{fold, given};
    use serde_json::json;

    fn to(n: &str) -> E164 {
        E164::parse(n).unwrap()
    }

    fn policy(countries: &[&str], premium: bool, satellite: bool) -> DestinationsSet {
        DestinationsSet {
            allowed_countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            allow_premium_rate: premium,
            allow_satellite: satellite,
        }
    }

    #[test]
    fn the_default_allows_every_country_but_no_premium_or_satellite() {
        let p = DestinationsState::default().in_force();
        assert_eq!(blocked(&p, &to("+442071838750")), None);
        let premium = blocked(&p, &to("+19005550123")).unwrap();
        assert_eq!(
            (premium.country.as_str(), premium.rule.as_str()),
            ("US", "premium_rate")
        );
        assert_eq!(blocked(&p, &to("+881612345678")).unwrap().rule, "satellite");
    }

    #[test]
    fn an_allowlist_names_the_country_it_refuses() {
        let p = policy(&["CA", "US"], false, false);
        assert_eq!(blocked(&p, &to("+12025550123")), None);
        assert_eq!(blocked(&p, &to("+16135550123")), None);
        let gb = blocked(&p, &to("+442071838750")).unwrap();
        assert_eq!(
            (gb.country.as_str(), gb.rule.as_str()),
            ("GB", "country_not_allowed")
        );
        let open = policy(&["US"], true, true);
        assert_eq!(blocked(&open, &to("+19005550123")), None);
    }

    #[test]
    fn given_the_same_policy_when_set_again_then_nothing() {
        let t = TenantId::new();
        let p = policy(&["US"], false, false);
        let s: DestinationsState = fold(
            given(t, vec![Event::DestinationsSet(p.clone())]),
            DestinationsState::apply,
        );
        let again = SetDestinations {
            tenant_id: t,
            policy: p,
            if_match: None,
        };
        assert!(decide(&s, again).unwrap().is_empty());
        let other = SetDestinations {
            tenant_id: t,
            policy: policy(&[], false, false),
            if_match: Some(9),
        };
        assert_eq!(
            decide(&s, other),
            Err(Rejection::PreconditionFailed { current: 1 })
        );
    }

    #[test]
    fn a_body_is_checked_field_by_field() {
        let parse =
            |b: Value| SetDestinations::parse(b.as_object().unwrap(), TenantId::new(), None);
        let ok = parse(json!({"allowed_countries": ["US", "CA", "US"], "allow_premium_rate": false, "allow_satellite": true})).unwrap();
        assert_eq!(
            ok.policy.allowed_countries,
            ["CA", "US"],
            "sorted, once each"
        );
        let fields = |b: Value| -> Vec<String> {
            parse(b).unwrap_err().into_iter().map(|e| e.field).collect()
        };
        assert_eq!(
            fields(
                json!({"allowed_countries": ["usa"], "allow_premium_rate": false, "allow_satellite": false})
            ),
            ["allowed_countries"]
        );
        assert_eq!(
            fields(
                json!({"allowed_countries": "US", "allow_premium_rate": 1, "allow_satellite": false})
            ),
            ["allowed_countries", "allow_premium_rate"]
        );
        let missing = fields(json!({}));
        for f in ["allowed_countries", "allow_premium_rate", "allow_satellite"] {
            assert!(missing.iter().any(|m| m == f), "{missing:?}");
        }
    }
}
