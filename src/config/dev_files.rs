//! The one loader of development-mode files: secrets generated on first use
//! and the dev tenant, kept under the data dir so restarts (and every process
//! of a dev install) agree on them.
//!
//! # Invariants
//! - In production nothing is read or generated here: a missing secret is an
//!   error naming its variable.
//! - Files are created `0600`, with `create_new`: when two processes race,
//!   the first file written wins and both read it back.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// The file dev mode keeps the master keyring in (rotated in place by
/// `switchboard keys rotate`).
pub const MASTER_KEY_FILE: &str = "master_key";

/// The dev-mode files of one data dir.
#[derive(Debug, Clone)]
pub struct DevFiles {
    dir: PathBuf,
    production: bool,
}

impl DevFiles {
    pub fn new(dir: &Path, production: bool) -> Self {
        DevFiles {
            dir: dir.to_owned(),
            production,
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The configured secret, or in dev mode the one kept in `file`,
    /// generated with `generate` the first time.
    pub fn secret(
        &self,
        configured: &Option<SecretString>,
        variable: &str,
        file: &str,
        generate: impl FnOnce() -> String,
    ) -> anyhow::Result<SecretString> {
        if let Some(s) = configured {
            return Ok(s.clone());
        }
        anyhow::ensure!(
            !self.production,
            "{variable} must be set when SWITCHBOARD_ENV=production"
        );
        self.value(file, generate).map(SecretString::from)
    }

    /// What `file` holds (trimmed), or `None` when it does not exist yet.
    /// Never generates: for tools that must find what the service made.
    pub fn existing(&self, file: &str) -> anyhow::Result<Option<String>> {
        anyhow::ensure!(!self.production, "no dev-mode files in production");
        match std::fs::read_to_string(self.path(file)) {
            Ok(v) => Ok(Some(v.trim().to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("read {}: {e}", self.path(file).display())),
        }
    }

    /// What `file` holds, written with `generate` first if it is absent.
    pub fn value(&self, file: &str, generate: impl FnOnce() -> String) -> anyhow::Result<String> {
        anyhow::ensure!(!self.production, "no dev-mode files in production");
        let path = self.path(file);
        if let Some(existing) = self.existing(file)? {
            if !existing.is_empty() {
                return Ok(existing);
            }
            // Another process created the file and is about to fill it.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let again = self.existing(file)?.unwrap_or_default();
            anyhow::ensure!(
                !again.is_empty(),
                "{} is empty; delete it to generate a new value",
                path.display()
            );
            return Ok(again);
        }
        write_private(&path, &generate())?;
        // Read back: when two processes raced, the first file written wins.
        Ok(std::fs::read_to_string(&path)?.trim().to_owned())
    }
}

fn write_private(path: &Path, value: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .or_else(|e| {
            // Another process generated it first: theirs wins.
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                std::fs::OpenOptions::new().append(true).open(path)
            } else {
                Err(e)
            }
        })?;
    if f.metadata()?.len() == 0 {
        f.write_all(value.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_generated_once_and_production_reads_nothing() {
        let dir = std::env::temp_dir().join(format!("sbdev-{}", uuid::Uuid::new_v4().simple()));
        let dev = DevFiles::new(&dir, false);
        assert_eq!(dev.existing("x").unwrap(), None);
        assert_eq!(dev.value("x", || "one".into()).unwrap(), "one");
        assert_eq!(dev.value("x", || "two".into()).unwrap(), "one", "kept");
        let prod = DevFiles::new(&dir, true);
        assert!(prod.value("x", || "three".into()).is_err());
        let err = prod
            .secret(&None, "SWITCHBOARD_X", "x", String::new)
            .unwrap_err();
        assert!(err.to_string().contains("SWITCHBOARD_X"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
