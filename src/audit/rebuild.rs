//! `switchboard audit rebuild PROJECTION`: a fresh copy of a read model,
//! built from the store while the service runs, swapped in atomically (the
//! design is in `crate::projection::swap`).

use std::sync::Arc;

use projections::Projection;
use sqlx::PgPool;

use crate::projection::swap::{self, Phase, Progress, SwapReport};

/// The projection called `name`, or an error listing the known ones.
pub fn find(name: &str) -> anyhow::Result<Arc<dyn Projection>> {
    let all = crate::projection::all();
    let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
    let names = names.join(", ");
    all.into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| anyhow::anyhow!("unknown projection {name:?}; one of: {names}"))
}

/// One line describing `p`.
pub fn describe(name: &str, p: &Progress) -> String {
    let phase = match p.phase {
        Phase::Copy => "copying",
        Phase::CatchUp => "catching up",
        Phase::Swap => "swapping in",
    };
    format!(
        "rebuild {name}: {} {phase}, {} events replayed (at position {} of ~{})",
        super::output::bar(
            p.at.global_position.max(0) as u64,
            p.total_hint.max(0) as u64
        ),
        p.applied,
        p.at.global_position,
        p.total_hint
    )
}

/// Rebuilds projection `name` and swaps it in; `progress` hears each batch.
pub async fn rebuild(
    pool: &PgPool,
    name: &str,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> anyhow::Result<SwapReport> {
    let projection = find(name)?;
    Ok(swap::rebuild_and_swap(pool, &*projection, progress).await?)
}
