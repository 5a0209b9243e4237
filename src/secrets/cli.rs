//! `switchboard keys …`.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a master key version.
    Rotate,
}

pub async fn run(_settings: &Settings, _cmd: KeysCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
