//! The Lua scripts, loaded once per process. `redis::Script` sends EVALSHA
//! and falls back to loading the script when Redis answers NOSCRIPT (after a
//! restart, a failover or SCRIPT FLUSH).

use std::sync::LazyLock;

use redis::Script;

use super::CapsError;

pub(crate) static RESERVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/reserve.lua")));
pub(crate) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/release.lua")));
pub(crate) static WITHDRAW: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/withdraw.lua")));
pub(crate) static USAGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/usage.lua")));
pub(crate) static REBUILD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/rebuild.lua")));

/// The first element of every reply but the rebuild's: the counters are not
/// loaded, rebuild them and retry.
pub(crate) const NEED_REBUILD: i64 = -1;

/// A reply field as a non-negative count.
pub(crate) fn count(reply: &[i64], i: usize) -> Result<u64, CapsError> {
    reply
        .get(i)
        .and_then(|v| u64::try_from(*v).ok())
        .ok_or_else(|| CapsError::Reply(format!("{reply:?}")))
}
