//! `switchboard keys rotate`: add a master key version and make it primary.
//!
//! Where the keyring comes from decides what rotating does:
//! - configured (`SWITCHBOARD_MASTER_KEY` or `--master-key`): nothing is
//!   changed; the new full value (`mk<N+1>:<base64>,<old entries>`) is
//!   returned for the operator to store wherever the variable is set from;
//! - dev mode (nothing configured, not production): the new entry is
//!   prepended to `<data dir>/master_key`, replaced atomically (temporary
//!   file, fsync, rename; mode 0600);
//! - production with nothing configured: refused, as at start-up.
//!
//! Either way `MasterKeyAdded {kid}` is appended to the system tenant stream
//! (`Uuid::nil()`), whose lock also serializes concurrent rotations. Old
//! entries stay in the ring, so everything wrapped under them still opens.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use events::{Event, MasterKeyAdded, StreamType, TenantId};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::ops::{begin, fold_tenant};
use super::MasterKeyring;
use crate::config::Settings;
use crate::store::{ExpectedVersion, StreamAppend};

pub use crate::config::MASTER_KEY_FILE;

/// The id of the system tenant and of its stream.
pub const SYSTEM_TENANT: TenantId = TenantId::SYSTEM;

/// What a rotation did. `Debug` never shows `new_value`.
#[derive(Debug)]
pub struct Rotated {
    /// The new primary kid.
    pub kid: String,
    /// The kids of the new ring, primary first.
    pub kids: Vec<String>,
    /// The file rewritten (dev mode), or `None` when the key is configured.
    pub written_to: Option<PathBuf>,
    /// Configured mode: the new full value for the operator to set.
    pub new_value: Option<SecretString>,
}

/// The keyring value as configured, or as the dev-mode file holds it. Never
/// generates one (unlike `Settings::master_key`): an operator pointed at the
/// wrong data dir gets an error, not a fresh empty keyring.
pub fn current_value(settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(v) = &settings.master_key {
        return Ok(v.clone());
    }
    if settings.is_production() {
        anyhow::bail!("SWITCHBOARD_MASTER_KEY must be set when SWITCHBOARD_ENV=production");
    }
    let dev = settings.dev_files();
    match dev.existing(MASTER_KEY_FILE)? {
        Some(v) => Ok(SecretString::from(v)),
        None => anyhow::bail!(
            "no master key configured and none generated at {}: set SWITCHBOARD_MASTER_KEY \
             or point --data-dir at the service's data dir",
            dev.path(MASTER_KEY_FILE).display()
        ),
    }
}

/// The current keyring, parsed (see `current_value`).
pub fn current_ring(settings: &Settings) -> anyhow::Result<MasterKeyring> {
    Ok(MasterKeyring::from_secret(&current_value(settings)?)?)
}

/// Adds master key `mk<N+1>` as the new primary; `actor` is recorded in the
/// `MasterKeyAdded` event.
pub async fn rotate(settings: &Settings, pool: &PgPool, actor: &str) -> anyhow::Result<Rotated> {
    let mut tx = begin(pool, SYSTEM_TENANT, actor).await?;
    // Read under the system stream's lock: a concurrent rotation has
    // finished, and its entry is in what we read.
    let current = current_value(settings)?;
    let ring = MasterKeyring::from_secret(&current)?;
    let kid = ring.next_kid();
    let entry = Zeroizing::new(MasterKeyring::generate_entry(&kid));
    let mut parts: Vec<&str> = vec![entry.as_str()];
    parts.extend(
        current
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty()),
    );
    let new_value = Zeroizing::new(parts.join(","));
    let kids: Vec<String> = MasterKeyring::parse(&new_value)?
        .kids()
        .into_iter()
        .map(str::to_owned)
        .collect();

    let system = fold_tenant(tx.conn(), SYSTEM_TENANT).await?;
    tx.append(&[StreamAppend {
        stream_type: StreamType::Tenant,
        stream_id: SYSTEM_TENANT.uuid(),
        expected: ExpectedVersion::from_version(system.version),
        events: vec![Event::MasterKeyAdded(MasterKeyAdded { kid: kid.clone() })],
    }])
    .await?;

    if settings.master_key.is_some() {
        tx.commit().await?;
        return Ok(Rotated {
            kid,
            kids,
            written_to: None,
            new_value: Some(SecretString::from(new_value.to_string())),
        });
    }
    let path = settings.dev_files().path(MASTER_KEY_FILE);
    // Replace the file, then commit; if the commit fails, put the old value
    // back, so the file and the audit trail agree.
    write_atomic(&path, &new_value)?;
    if let Err(e) = tx.commit().await {
        write_atomic(&path, current.expose_secret().trim())
            .context("restore the master key file after a failed commit")?;
        return Err(e.into());
    }
    Ok(Rotated {
        kid,
        kids,
        written_to: Some(path),
        new_value: None,
    })
}

/// Replaces `path` with `value`: a fresh 0600 file beside it, fsynced, then
/// renamed over it, then the directory fsynced.
pub fn write_atomic(path: &Path, value: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let tmp = dir.join(format!(".{name}.{}.tmp", Uuid::new_v4().simple()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(value.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("write {}", path.display()))
}
