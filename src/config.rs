//! Configuration: one typed struct, read once at start from flags and
//! environment variables (SPEC §2), then passed down. Nothing below this
//! module reads the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::CallLimits;
use crate::namespace::Namespace;

fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Settings shared by every subcommand; each flag has an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/switchboard",
        global = true
    )]
    pub database_url: String,
    /// Connections each process may hold to PostgreSQL. Every role of every
    /// process counts against the server's `max_connections` (or a pooler's
    /// limit): size it as (server limit - headroom) / processes.
    #[arg(
        long,
        env = "SWITCHBOARD_DB_MAX_CONNECTIONS",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(2..=1000),
        global = true
    )]
    pub db_max_connections: u32,
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub redis_url: String,
    #[arg(
        long = "listen",
        env = "SWITCHBOARD_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,
    /// Base of the status_callback_url given to the Call Processor.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// HS256 secret; generated under the data dir in dev mode.
    #[arg(
        long,
        env = "SWITCHBOARD_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<SecretString>,
    /// Path of a JWKS file; when set, HS256 is off.
    #[arg(long, env = "SWITCHBOARD_JWT_JWKS", global = true)]
    pub jwt_jwks: Option<PathBuf>,
    #[arg(
        long,
        env = "SWITCHBOARD_JWT_ISSUER",
        default_value = "switchboard-dev",
        global = true
    )]
    pub jwt_issuer: String,
    #[arg(
        long,
        env = "SWITCHBOARD_JWT_AUDIENCE",
        default_value = "switchboard",
        global = true
    )]
    pub jwt_audience: String,
    /// `kid:base64(32 bytes)`, comma-separated, first is primary.
    #[arg(
        long,
        env = "SWITCHBOARD_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<SecretString>,
    /// Unset: the built-in simulator.
    #[arg(long, env = "SWITCHBOARD_CALL_PROCESSOR_URL", global = true)]
    pub call_processor_url: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_CALLBACK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub callback_secret: Option<SecretString>,
    #[arg(
        long,
        env = "SWITCHBOARD_NAMESPACE",
        default_value = "switchboard",
        global = true
    )]
    pub namespace: Namespace,
    /// `dev` (also `development`, the default), `test` or `production`; any
    /// other value is refused at start. `production` refuses to start
    /// without every secret and the Call Processor configured.
    #[arg(
        long = "env",
        env = "SWITCHBOARD_ENV",
        value_enum,
        default_value_t = Environment::Dev,
        global = true
    )]
    pub environment: Environment,
    /// Caps of a tenant that never set its own (SPEC §4 ships 10, 10, 1000, 600).
    #[arg(
        long,
        env = "SWITCHBOARD_DEFAULT_CONCURRENT_MAX",
        default_value_t = 10,
        global = true
    )]
    pub default_concurrent_max: u32,
    #[arg(
        long,
        env = "SWITCHBOARD_DEFAULT_CALLS_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub default_calls_per_minute: u32,
    #[arg(
        long,
        env = "SWITCHBOARD_DEFAULT_DAILY_CALLS_MAX",
        default_value_t = 1000,
        global = true
    )]
    pub default_daily_calls_max: u32,
    #[arg(
        long,
        env = "SWITCHBOARD_DEFAULT_DAILY_MINUTES_MAX",
        default_value_t = 600,
        global = true
    )]
    pub default_daily_minutes_max: u32,
    /// How long `POST /calls/originate` waits for the outcome before 202.
    #[arg(long, env = "SWITCHBOARD_ORIGINATE_WAIT", default_value = "10s", value_parser = parse_ttl, global = true)]
    pub originate_wait: std::time::Duration,
    /// How long JetStream waits for a worker's acknowledgement before it
    /// redelivers a call to another worker.
    #[arg(long, env = "SWITCHBOARD_WORKER_ACK_WAIT", default_value = "30s", value_parser = parse_ttl, global = true)]
    pub worker_ack_wait: std::time::Duration,
    /// Calls one worker handles at once.
    #[arg(
        long,
        env = "SWITCHBOARD_WORKER_CONCURRENCY",
        default_value_t = 128,
        global = true
    )]
    pub worker_concurrency: usize,
    /// Timeout of one request to the Call Processor.
    #[arg(long, env = "SWITCHBOARD_CALL_PROCESSOR_TIMEOUT", default_value = "5s", value_parser = parse_ttl, global = true)]
    pub call_processor_timeout: std::time::Duration,
    /// Attempts per dial (5xx and timeouts are retried with backoff).
    #[arg(
        long,
        env = "SWITCHBOARD_CALL_PROCESSOR_ATTEMPTS",
        default_value_t = 3,
        global = true
    )]
    pub call_processor_attempts: u32,
    /// How long a dial the Call Processor never answered is retried (with
    /// the same Idempotency-Key) before the call is recorded as failed.
    #[arg(long, env = "SWITCHBOARD_DIAL_GIVE_UP", default_value = "60s", value_parser = parse_ttl, global = true)]
    pub dial_give_up: std::time::Duration,
    /// How long an admitted call holds a concurrent slot without an end.
    #[arg(long, env = "SWITCHBOARD_CALL_LEASE", default_value = "4h", value_parser = parse_ttl, global = true)]
    pub call_lease: std::time::Duration,
    /// Where dev-mode secrets are generated and kept.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = ".switchboard",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// The shortest callback secret production accepts: an HMAC-SHA256 key
/// shorter than its output is guessable sooner than it need be.
pub const MIN_CALLBACK_SECRET_BYTES: usize = 32;

/// Where the service runs. Only `Production` changes behaviour: no generated
/// secret, no simulator, no dev token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    #[value(alias = "development")]
    Dev,
    Test,
    Production,
}

impl Settings {
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// In production, every setting that has no safe default, named at once:
    /// `Err` lists those missing. Elsewhere always `Ok`.
    pub fn check_production(&self, roles_need_call_processor: bool) -> anyhow::Result<()> {
        if !self.is_production() {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.master_key.is_none() {
            missing.push("SWITCHBOARD_MASTER_KEY");
        }
        if self.callback_secret.is_none() {
            missing.push("SWITCHBOARD_CALLBACK_SECRET");
        }
        if self.jwt_secret.is_none() && self.jwt_jwks.is_none() {
            missing.push("SWITCHBOARD_JWT_SECRET or SWITCHBOARD_JWT_JWKS");
        }
        if roles_need_call_processor && self.call_processor_url.is_none() {
            missing.push("SWITCHBOARD_CALL_PROCESSOR_URL (no simulator in production)");
        }
        // Refused, not just missing: settings that would run unsafely.
        if let Some(secret) = &self.callback_secret {
            if secret.expose_secret().len() < MIN_CALLBACK_SECRET_BYTES {
                missing.push(
                    "SWITCHBOARD_CALLBACK_SECRET of at least 32 bytes (a short one lets callbacks be forged)",
                );
            }
        }
        if let Some(url) = &self.call_processor_url {
            if roles_need_call_processor && !url.trim().to_ascii_lowercase().starts_with("https://")
            {
                missing.push(
                    "an https:// SWITCHBOARD_CALL_PROCESSOR_URL (dials carry tenants' credentials)",
                );
            }
        }
        anyhow::ensure!(
            missing.is_empty(),
            "SWITCHBOARD_ENV=production needs {}",
            missing.join(", ")
        );
        Ok(())
    }

    pub fn default_limits(&self) -> CallLimits {
        CallLimits {
            concurrent_max: self.default_concurrent_max,
            calls_per_minute: self.default_calls_per_minute,
            daily_calls_max: self.default_daily_calls_max,
            daily_minutes_max: self.default_daily_minutes_max,
        }
    }

    /// The HS256 secret (generated in dev mode: 32 random bytes, hex).
    pub fn jwt_secret(&self) -> anyhow::Result<SecretString> {
        dev_secret(
            self,
            &self.jwt_secret,
            "SWITCHBOARD_JWT_SECRET",
            "jwt_secret",
            random_hex,
        )
    }

    /// The master keyring value (generated in dev mode).
    pub fn master_key(&self) -> anyhow::Result<SecretString> {
        dev_secret(
            self,
            &self.master_key,
            "SWITCHBOARD_MASTER_KEY",
            "master_key",
            crate::secrets::MasterKeyring::generate_dev_value,
        )
    }

    /// The secret that signs Call Processor callbacks (generated in dev mode).
    pub fn callback_secret(&self) -> anyhow::Result<SecretString> {
        dev_secret(
            self,
            &self.callback_secret,
            "SWITCHBOARD_CALLBACK_SECRET",
            "callback_secret",
            random_hex,
        )
    }
}

/// A duration as settings write it: `250ms`, `90s` (or `90`), `30m`, `1h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n.parse().map_err(|_| format!("bad duration {s:?}"))?;
    if unit == "ms" {
        return Ok(std::time::Duration::from_millis(n));
    }
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("bad duration unit in {s:?}; use s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(n * mult))
}

/// Returns the configured secret, or in dev mode one generated once and kept
/// (mode 0600) under the data dir. In production a missing secret is an error.
pub fn dev_secret(
    settings: &Settings,
    configured: &Option<SecretString>,
    variable: &str,
    file: &str,
    generate: impl FnOnce() -> String,
) -> anyhow::Result<SecretString> {
    if let Some(s) = configured {
        return Ok(s.clone());
    }
    if settings.is_production() {
        anyhow::bail!("{variable} must be set when SWITCHBOARD_ENV=production");
    }
    let path = settings.data_dir.join(file);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            return Ok(SecretString::from(existing.trim().to_owned()));
        }
        // Another process created the file and is about to fill it.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let again = std::fs::read_to_string(&path)?;
        anyhow::ensure!(
            !again.trim().is_empty(),
            "{} is empty; delete it to generate a new secret",
            path.display()
        );
        return Ok(SecretString::from(again.trim().to_owned()));
    }
    write_private(&path, &generate())?;
    // Read back: when two processes raced, the first file written wins.
    let stored = std::fs::read_to_string(&path)?;
    Ok(SecretString::from(stored.trim().to_owned()))
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
    use clap::Parser;

    use crate::cli::Cli;

    fn settings(args: &[&str]) -> super::Settings {
        let dir = std::env::temp_dir().join(format!("sbcfg-{}", uuid::Uuid::new_v4().simple()));
        let mut all = vec!["switchboard", "--data-dir", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        all.push("serve");
        Cli::parse_from(all).settings
    }

    #[test]
    fn production_refuses_every_generated_secret() {
        let s = settings(&["--env", "production"]);
        assert!(s.jwt_secret().is_err());
        assert!(s.master_key().is_err());
        assert!(s.callback_secret().is_err());
        assert!(!s.data_dir.exists(), "nothing was generated");
    }

    #[test]
    fn development_generates_private_secrets_once() {
        use secrecy::ExposeSecret;
        use std::os::unix::fs::PermissionsExt;
        let s = settings(&[]);
        let first = s.jwt_secret().unwrap();
        assert_eq!(first.expose_secret().len(), 64);
        assert_eq!(
            s.jwt_secret().unwrap().expose_secret(),
            first.expose_secret(),
            "kept, not regenerated"
        );
        let mode = std::fs::metadata(s.data_dir.join("jwt_secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(s.master_key().unwrap().expose_secret().starts_with("mk1:"));
        std::fs::remove_dir_all(&s.data_dir).unwrap();
    }

    #[test]
    fn an_unknown_environment_is_refused_at_start() {
        let dir = std::env::temp_dir();
        let parsed = Cli::try_parse_from([
            "switchboard",
            "--data-dir",
            dir.to_str().unwrap(),
            "--env",
            "prod",
            "serve",
        ]);
        let err = parsed.expect_err("prod is not an environment").to_string();
        assert!(err.contains("production"), "names the values: {err}");
        assert!(!settings(&["--env", "development"]).is_production());
        assert!(!settings(&["--env", "test"]).is_production());
    }

    #[test]
    fn production_names_every_missing_setting_at_once() {
        let s = settings(&["--env", "production"]);
        let err = s.check_production(true).unwrap_err().to_string();
        for name in [
            "SWITCHBOARD_MASTER_KEY",
            "SWITCHBOARD_CALLBACK_SECRET",
            "SWITCHBOARD_JWT_SECRET or SWITCHBOARD_JWT_JWKS",
            "SWITCHBOARD_CALL_PROCESSOR_URL",
        ] {
            assert!(err.contains(name), "{err}");
        }
        let ok = settings(&[
            "--env",
            "production",
            "--master-key",
            "mk1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "--callback-secret",
            "c".repeat(32).as_str(),
            "--jwt-secret",
            "x".repeat(40).as_str(),
            "--call-processor-url",
            "https://callproc.internal",
        ]);
        assert!(ok.check_production(true).is_ok());
        // A short callback secret and a cleartext Call Processor are refused.
        let unsafe_ = settings(&[
            "--env",
            "production",
            "--master-key",
            "mk1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "--callback-secret",
            "",
            "--jwt-secret",
            "x".repeat(40).as_str(),
            "--call-processor-url",
            "http://callproc.internal",
        ]);
        let err = unsafe_.check_production(true).unwrap_err().to_string();
        assert!(err.contains("at least 32 bytes"), "{err}");
        assert!(err.contains("https://"), "{err}");
        assert!(settings(&[]).check_production(true).is_ok());
    }

    #[test]
    fn configured_secrets_win_and_durations_parse() {
        let s = settings(&[
            "--env",
            "production",
            "--jwt-secret",
            "x".repeat(40).as_str(),
            "--originate-wait",
            "250ms",
        ]);
        assert!(s.jwt_secret().is_ok());
        assert_eq!(s.originate_wait, std::time::Duration::from_millis(250));
        assert_eq!(
            s.default_limits(),
            crate::domain::CallLimits::SHIPPED_DEFAULTS
        );
    }
}
