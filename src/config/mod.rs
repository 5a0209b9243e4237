//! Configuration: one typed struct, read once at start from flags and
//! environment variables (SPEC §2), then passed down. Nothing below this
//! module reads the environment.

mod dev_files;
mod duration;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

pub use dev_files::{DevFiles, MASTER_KEY_FILE};
pub use duration::parse_ttl;

use crate::domain::CallLimits;
use crate::namespace::Namespace;

fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Settings shared by every subcommand; each flag has an environment
/// variable. Grouped by concern (each group is its own struct, and its own
/// heading in `--help`); the flag and variable names are the stable API.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub db: DatabaseSettings,
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true,
        // It may carry a user's password.
        hide_env_values = true
    )]
    pub nats_url: String,
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    pub redis_url: String,
    /// REDIS_URL names a Redis Cluster: one seed node or a comma-separated
    /// list of them (each a `redis://` URL).
    #[arg(long, env = "SWITCHBOARD_REDIS_CLUSTER", global = true)]
    pub redis_cluster: bool,
    /// Replicas of the events stream when it is created (3 on a
    /// three-node JetStream cluster; NATS_URL may list every node,
    /// comma-separated). An existing stream keeps its own.
    #[arg(long, env = "SWITCHBOARD_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5), global = true)]
    pub stream_replicas: u8,
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
    /// How long `POST /calls/originate` waits for the outcome before 202.
    #[arg(long, env = "SWITCHBOARD_ORIGINATE_WAIT", default_value = "10s", value_parser = parse_ttl, global = true)]
    pub originate_wait: std::time::Duration,
    /// How often `GET /events/stream` sends a heartbeat comment.
    #[arg(long, env = "SWITCHBOARD_FEED_HEARTBEAT", default_value = "15s", value_parser = parse_ttl, global = true)]
    pub feed_heartbeat: std::time::Duration,
    /// Events the live feed holds for its slowest client; one that falls
    /// further behind is closed with an `overflow` event (it resumes with
    /// Last-Event-ID).
    #[arg(
        long,
        env = "SWITCHBOARD_FEED_BUFFER",
        default_value_t = 8192,
        global = true
    )]
    pub feed_buffer: usize,
    #[command(flatten)]
    pub auth: AuthSettings,
    /// `kid:base64(32 bytes)`, comma-separated, first is primary.
    #[arg(
        long,
        env = "SWITCHBOARD_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<SecretString>,
    #[command(flatten)]
    pub call_processor: CallProcessorSettings,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub caps: CapsSettings,
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
    /// Where dev-mode secrets (and the dev tenant) are generated and kept.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = ".switchboard",
        global = true
    )]
    pub data_dir: PathBuf,
}

/// The event store.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseSettings {
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/switchboard",
        global = true
    )]
    pub url: String,
    /// Connections each process may hold to PostgreSQL. Every role of every
    /// process counts against the server's `max_connections` (or a pooler's
    /// limit): size it as (server limit - headroom) / processes.
    #[arg(
        id = "db_max_connections",
        long = "db-max-connections",
        env = "SWITCHBOARD_DB_MAX_CONNECTIONS",
        default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(2..=1000),
        global = true
    )]
    pub max_connections: u32,
}

/// Who may call the API: HS256 with a shared secret, or a JWKS file.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthSettings {
    /// HS256 secret; generated under the data dir in dev mode.
    #[arg(
        long = "jwt-secret",
        env = "SWITCHBOARD_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<SecretString>,
    /// Path of a JWKS file; when set, HS256 is off.
    #[arg(
        id = "jwt_jwks",
        long = "jwt-jwks",
        env = "SWITCHBOARD_JWT_JWKS",
        global = true
    )]
    pub jwks: Option<PathBuf>,
    #[arg(
        id = "jwt_issuer",
        long = "jwt-issuer",
        env = "SWITCHBOARD_JWT_ISSUER",
        default_value = "switchboard-dev",
        global = true
    )]
    pub issuer: String,
    #[arg(
        id = "jwt_audience",
        long = "jwt-audience",
        env = "SWITCHBOARD_JWT_AUDIENCE",
        default_value = "switchboard",
        global = true
    )]
    pub audience: String,
}

/// The Call Processor that dials (SPEC §7), and how it is talked to.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Call Processor")]
pub struct CallProcessorSettings {
    /// Unset: the built-in simulator (refused in production).
    #[arg(
        id = "call_processor_url",
        long = "call-processor-url",
        env = "SWITCHBOARD_CALL_PROCESSOR_URL",
        global = true
    )]
    pub url: Option<String>,
    /// Signs the Call Processor's status callbacks.
    #[arg(
        long = "callback-secret",
        env = "SWITCHBOARD_CALLBACK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub callback_secret: Option<SecretString>,
    /// Timeout of one request to the Call Processor.
    #[arg(id = "call_processor_timeout",
        long = "call-processor-timeout", env = "SWITCHBOARD_CALL_PROCESSOR_TIMEOUT", default_value = "5s", value_parser = parse_ttl, global = true)]
    pub timeout: std::time::Duration,
    /// Attempts per dial (5xx and timeouts are retried with backoff).
    #[arg(
        id = "call_processor_attempts",
        long = "call-processor-attempts",
        env = "SWITCHBOARD_CALL_PROCESSOR_ATTEMPTS",
        default_value_t = 3,
        global = true
    )]
    pub attempts: u32,
    /// How long a dial the Call Processor never answered is retried (with
    /// the same Idempotency-Key) before the call is recorded as failed.
    #[arg(id = "dial_give_up",
        long = "dial-give-up", env = "SWITCHBOARD_DIAL_GIVE_UP", default_value = "60s", value_parser = parse_ttl, global = true)]
    pub give_up: std::time::Duration,
}

/// The originate worker's consumption of JetStream.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Worker")]
pub struct WorkerSettings {
    /// How long JetStream waits for a worker's acknowledgement before it
    /// redelivers a call to another worker.
    #[arg(id = "worker_ack_wait",
        long = "worker-ack-wait", env = "SWITCHBOARD_WORKER_ACK_WAIT", default_value = "30s", value_parser = parse_ttl, global = true)]
    pub ack_wait: std::time::Duration,
    /// Calls one worker handles at once.
    #[arg(
        id = "worker_concurrency",
        long = "worker-concurrency",
        env = "SWITCHBOARD_WORKER_CONCURRENCY",
        default_value_t = 128,
        global = true
    )]
    pub concurrency: usize,
}

/// Cost caps: the defaults of a tenant that never set its own (SPEC §4
/// ships 10, 10, 1000, 600), and how long a call may hold a slot.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cost caps")]
pub struct CapsSettings {
    #[arg(
        long = "default-concurrent-max",
        env = "SWITCHBOARD_DEFAULT_CONCURRENT_MAX",
        default_value_t = 10,
        global = true
    )]
    pub default_concurrent_max: u32,
    #[arg(
        long = "default-calls-per-minute",
        env = "SWITCHBOARD_DEFAULT_CALLS_PER_MINUTE",
        default_value_t = 10,
        global = true
    )]
    pub default_calls_per_minute: u32,
    #[arg(
        long = "default-daily-calls-max",
        env = "SWITCHBOARD_DEFAULT_DAILY_CALLS_MAX",
        default_value_t = 1000,
        global = true
    )]
    pub default_daily_calls_max: u32,
    #[arg(
        long = "default-daily-minutes-max",
        env = "SWITCHBOARD_DEFAULT_DAILY_MINUTES_MAX",
        default_value_t = 600,
        global = true
    )]
    pub default_daily_minutes_max: u32,
    /// How long an admitted call holds a concurrent slot without an end.
    #[arg(long = "call-lease", env = "SWITCHBOARD_CALL_LEASE", default_value = "4h", value_parser = parse_ttl, global = true)]
    pub call_lease: std::time::Duration,
}

impl CapsSettings {
    pub fn default_limits(&self) -> CallLimits {
        CallLimits {
            concurrent_max: self.default_concurrent_max,
            calls_per_minute: self.default_calls_per_minute,
            daily_calls_max: self.default_daily_calls_max,
            daily_minutes_max: self.default_daily_minutes_max,
        }
    }
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
        if self.call_processor.callback_secret.is_none() {
            missing.push("SWITCHBOARD_CALLBACK_SECRET");
        }
        if self.auth.jwt_secret.is_none() && self.auth.jwks.is_none() {
            missing.push("SWITCHBOARD_JWT_SECRET or SWITCHBOARD_JWT_JWKS");
        }
        if roles_need_call_processor && self.call_processor.url.is_none() {
            missing.push("SWITCHBOARD_CALL_PROCESSOR_URL (no simulator in production)");
        }
        // Refused, not just missing: settings that would run unsafely.
        if let Some(secret) = &self.call_processor.callback_secret {
            if secret.expose_secret().len() < MIN_CALLBACK_SECRET_BYTES {
                missing.push(
                    "SWITCHBOARD_CALLBACK_SECRET of at least 32 bytes (a short one lets callbacks be forged)",
                );
            }
        }
        if let Some(url) = &self.call_processor.url {
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
        self.caps.default_limits()
    }

    /// The dev-mode files under the data dir (none in production).
    pub fn dev_files(&self) -> DevFiles {
        DevFiles::new(&self.data_dir, self.is_production())
    }

    /// The HS256 secret (generated in dev mode: 32 random bytes, hex).
    pub fn jwt_secret(&self) -> anyhow::Result<SecretString> {
        self.dev_files().secret(
            &self.auth.jwt_secret,
            "SWITCHBOARD_JWT_SECRET",
            "jwt_secret",
            random_hex,
        )
    }

    /// The master keyring value (generated in dev mode).
    pub fn master_key(&self) -> anyhow::Result<SecretString> {
        self.dev_files().secret(
            &self.master_key,
            "SWITCHBOARD_MASTER_KEY",
            MASTER_KEY_FILE,
            crate::secrets::MasterKeyring::generate_dev_value,
        )
    }

    /// The secret that signs Call Processor callbacks (generated in dev mode).
    pub fn callback_secret(&self) -> anyhow::Result<SecretString> {
        self.dev_files().secret(
            &self.call_processor.callback_secret,
            "SWITCHBOARD_CALLBACK_SECRET",
            "callback_secret",
            random_hex,
        )
    }
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
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        // Unique ids and flags across the flattened groups, for every subcommand.
        Cli::command().debug_assert();
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
        assert_eq!(s.worker.ack_wait, std::time::Duration::from_secs(30));
        assert_eq!(s.db.max_connections, 32);
        assert_eq!(
            s.default_limits(),
            crate::domain::CallLimits::SHIPPED_DEFAULTS
        );
    }
}
