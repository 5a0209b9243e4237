//! `switchboard audit …`.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify every stream's hash chain.
    Verify,
}

pub async fn run(_settings: &Settings, _cmd: AuditCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
