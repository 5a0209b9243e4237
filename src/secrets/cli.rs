//! `switchboard keys …`: thin wrappers over `secrets::ops`. Nothing here
//! prints key material, except the new keyring value `rotate` prints to
//! stdout when the key is configured from the environment.

use anyhow::Context;
use clap::{Args, Subcommand};
use events::TenantId;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use super::ops;
use crate::config::Settings;

/// Who is recorded as the actor of the change.
#[derive(Debug, Args)]
pub struct Actor {
    /// Recorded as the `actor` of the audit event.
    #[arg(long, env = "USER", default_value = "operator",
        value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub actor: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a master key version `mk<N+1>` and make it the primary; older
    /// versions stay, so everything wrapped under them still opens.
    ///
    /// With SWITCHBOARD_MASTER_KEY (or --master-key) set, nothing is changed:
    /// the new full value is printed to stdout, and only there, for you to
    /// store in place of the old one (then restart every process). In dev
    /// mode the new entry is prepended to <data dir>/master_key. Either way
    /// MasterKeyAdded is recorded in the audit trail. Refused in production
    /// without a configured key. Afterwards, restart, then run `keys rewrap`.
    Rotate(Actor),
    /// Re-wrap every tenant data key under the primary master key, recording
    /// TenantKeyRewrapped per key. Run it once every process holds the new
    /// primary; afterwards the old master key can be removed.
    Rewrap(Actor),
    /// Destroy a tenant's data keys: its stored credentials become unreadable
    /// for good (its calls fail, nothing is dialed); other tenants keep
    /// working. Records TenantKeyShredded per key. Irreversible.
    ShredTenant {
        /// The tenant whose keys are destroyed.
        #[arg(long)]
        tenant: TenantId,
        /// Confirms the irreversible shred.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        actor: Actor,
    },
}

/// A pool on a migrated database (never creates one).
async fn pool(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = crate::db::connect(&settings.db.url, 2).await?;
    let ready = crate::db::migrations_applied(&pool).await.unwrap_or(false);
    anyhow::ensure!(
        ready,
        "the database is not migrated: run `switchboard migrate`"
    );
    Ok(pool)
}

pub async fn run(settings: &Settings, cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Rotate(Actor { actor }) => {
            let pool = pool(settings).await?;
            let done = ops::rotate(settings, &pool, &actor).await?;
            let kids = done.kids.join(", ");
            match (&done.new_value, &done.written_to) {
                (Some(value), _) => {
                    eprintln!(
                        "master key {} added (keyring: {kids}). Nothing was changed: set \
                         SWITCHBOARD_MASTER_KEY to the value printed on stdout, restart every \
                         process, then run `switchboard keys rewrap`.",
                        done.kid
                    );
                    println!("{}", value.expose_secret());
                }
                (None, Some(path)) => println!(
                    "master key {} added to {} (keyring: {kids}); restart every process, then \
                     run `switchboard keys rewrap`",
                    done.kid,
                    path.display()
                ),
                (None, None) => {}
            }
        }
        KeysCommand::Rewrap(Actor { actor }) => {
            let ring = ops::current_ring(settings)?;
            let pool = pool(settings).await?;
            let report = ops::rewrap(&pool, &ring, &actor).await?;
            for m in &report.moved {
                println!(
                    "tenant {} key {}: {} -> {}",
                    m.tenant_id, m.key_id, m.from_kid, m.to_kid
                );
            }
            for f in &report.failed {
                eprintln!("tenant {} key {}: {}", f.tenant_id, f.key_id, f.error);
            }
            println!(
                "{} key(s) rewrapped under {}; {} failed",
                report.moved.len(),
                report.master_kid,
                report.failed.len()
            );
            anyhow::ensure!(
                report.failed.is_empty(),
                "{} key(s) could not be rewrapped",
                report.failed.len()
            );
        }
        KeysCommand::ShredTenant { tenant, yes, actor } => {
            anyhow::ensure!(
                yes,
                "shredding destroys tenant {tenant}'s keys for good: pass --yes to confirm"
            );
            let pool = pool(settings).await?;
            let ids = ops::shred_tenant(&pool, tenant, &actor.actor)
                .await
                .with_context(|| format!("shred tenant {tenant}"))?;
            if ids.is_empty() {
                println!("tenant {tenant} has no live data key; nothing shredded");
            } else {
                println!("tenant {tenant}: shredded {}", ids.join(", "));
            }
        }
    }
    Ok(())
}
