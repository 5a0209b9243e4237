//! How the simulator behaves, and the JSON patch `PUT /config` applies.
//!
//! Failure injection happens only for requests that would place a new dial;
//! a repeat of an already dialed `call_id` always gets the recorded
//! `provider_call_id`, which is the idempotency the contract promises.

use std::time::Duration;

use rand::Rng;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

/// Simulator behaviour. `Debug` redacts the callback secret.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// From the 200 answer to the `ringing` callback.
    pub ring_delay: Duration,
    /// From `ringing` to `answered` (or to busy / no_answer / failed).
    pub answer_delay: Duration,
    /// The `duration_s` a completed call reports.
    pub call_duration_s: u64,
    /// How long an answered call really lasts before `completed`; `None`
    /// means `call_duration_s` seconds. Lets tests report long calls fast.
    pub call_hold: Option<Duration>,
    /// Relative weights of the end states of answered-or-not calls.
    pub outcome_mix: OutcomeMix,
    /// Fraction of new originates answered 503 before any dial is recorded.
    pub fail_rate: f64,
    /// Fraction of new originates that are dialed (recorded, callbacks
    /// sent) but answered only after `timeout_delay`: a lost answer.
    pub timeout_rate: f64,
    /// How long a "timed out" originate holds its answer; longer than the
    /// client's timeout.
    pub timeout_delay: Duration,
    /// Fraction of new originates refused with 400 `{error}`.
    pub reject_rate: f64,
    /// Key of the `Switchboard-Signature` on callbacks.
    pub callback_secret: SecretString,
}

impl Default for SimConfig {
    /// Ring 200 ms, answer 300 ms, 5 s calls, all completed, no failures.
    /// The callback secret is empty: set it to the gateway's, or every
    /// callback is refused (which fails loudly rather than insecurely).
    fn default() -> Self {
        SimConfig {
            ring_delay: Duration::from_millis(200),
            answer_delay: Duration::from_millis(300),
            call_duration_s: 5,
            call_hold: None,
            outcome_mix: OutcomeMix::default(),
            fail_rate: 0.0,
            timeout_rate: 0.0,
            timeout_delay: Duration::from_secs(30),
            reject_rate: 0.0,
            callback_secret: SecretString::from(String::new()),
        }
    }
}

impl SimConfig {
    /// The defaults, signing callbacks with `secret`.
    pub fn with_secret(secret: SecretString) -> Self {
        SimConfig {
            callback_secret: secret,
            ..SimConfig::default()
        }
    }

    /// The configuration as `GET /config` shows it (durations in ms, no
    /// secret).
    pub fn view(&self) -> Value {
        json!({
            "ring_delay_ms": self.ring_delay.as_millis() as u64,
            "answer_delay_ms": self.answer_delay.as_millis() as u64,
            "call_duration_s": self.call_duration_s,
            "call_hold_ms": self.call_hold.map(|d| d.as_millis() as u64),
            "outcome_mix": self.outcome_mix,
            "fail_rate": self.fail_rate,
            "timeout_rate": self.timeout_rate,
            "timeout_delay_ms": self.timeout_delay.as_millis() as u64,
            "reject_rate": self.reject_rate,
        })
    }
}

/// Weights of the outcomes; all zero means completed. In JSON a missing
/// weight is 0, so `{"busy": 1}` means every call is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeMix {
    #[serde(default)]
    pub completed: u32,
    #[serde(default)]
    pub busy: u32,
    #[serde(default)]
    pub no_answer: u32,
    #[serde(default)]
    pub failed: u32,
}

impl Default for OutcomeMix {
    fn default() -> Self {
        OutcomeMix {
            completed: 1,
            busy: 0,
            no_answer: 0,
            failed: 0,
        }
    }
}

/// How a simulated call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Busy,
    NoAnswer,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no_answer",
            Outcome::Failed => "failed",
        }
    }
}

impl OutcomeMix {
    /// Draws an outcome by weight.
    pub fn pick(&self) -> Outcome {
        let weighted = [
            (self.completed, Outcome::Completed),
            (self.busy, Outcome::Busy),
            (self.no_answer, Outcome::NoAnswer),
            (self.failed, Outcome::Failed),
        ];
        let total: u64 = weighted.iter().map(|(w, _)| u64::from(*w)).sum();
        if total == 0 {
            return Outcome::Completed;
        }
        let mut roll = rand::thread_rng().gen_range(0..total);
        for (w, outcome) in weighted {
            if roll < u64::from(w) {
                return outcome;
            }
            roll -= u64::from(w);
        }
        Outcome::Completed
    }
}

/// A partial update: absent fields keep their value; `call_hold_ms: null`
/// goes back to real-time calls.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub ring_delay_ms: Option<u64>,
    pub answer_delay_ms: Option<u64>,
    pub call_duration_s: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    pub call_hold_ms: Option<Option<u64>>,
    pub outcome_mix: Option<OutcomeMix>,
    pub fail_rate: Option<f64>,
    pub timeout_rate: Option<f64>,
    pub timeout_delay_ms: Option<u64>,
    pub reject_rate: Option<f64>,
    pub callback_secret: Option<String>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

impl ConfigPatch {
    /// Applies the patch, or changes nothing if a rate is outside [0, 1].
    pub fn apply(self, config: &mut SimConfig) -> Result<(), &'static str> {
        let rates = [self.fail_rate, self.timeout_rate, self.reject_rate];
        if rates.iter().flatten().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("rates must be between 0 and 1");
        }
        let ms = Duration::from_millis;
        if let Some(v) = self.ring_delay_ms {
            config.ring_delay = ms(v);
        }
        if let Some(v) = self.answer_delay_ms {
            config.answer_delay = ms(v);
        }
        if let Some(v) = self.call_duration_s {
            config.call_duration_s = v;
        }
        if let Some(v) = self.call_hold_ms {
            config.call_hold = v.map(ms);
        }
        if let Some(v) = self.outcome_mix {
            config.outcome_mix = v;
        }
        if let Some(v) = self.timeout_delay_ms {
            config.timeout_delay = ms(v);
        }
        config.fail_rate = self.fail_rate.unwrap_or(config.fail_rate);
        config.timeout_rate = self.timeout_rate.unwrap_or(config.timeout_rate);
        config.reject_rate = self.reject_rate.unwrap_or(config.reject_rate);
        if let Some(secret) = self.callback_secret {
            config.callback_secret = SecretString::from(secret);
        }
        Ok(())
    }
}
