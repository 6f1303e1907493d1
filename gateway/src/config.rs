//! Typed configuration from the environment (SPEC §7). No host, port or secret lives in code
//! beyond the documented defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use commands::secrets::{decode_key, generate_key, Keyring};
use commands::Store;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// `NATS_URL`; unset means the in-process bus.
    pub nats_url: Option<String>,
    /// `ACCOUNTD_NATS_STREAM_PREFIX`, prepended verbatim to stream names and subjects.
    pub nats_stream_prefix: String,
    /// `ACCOUNTD_NATS_REPLICAS`.
    pub nats_replicas: usize,
    /// `ACCOUNTD_PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
    /// `ACCOUNTD_SMTP_URL`; unset means the file sink.
    pub smtp_url: Option<String>,
    /// `ACCOUNTD_SMTP_FROM`.
    pub smtp_from: String,
    /// `ACCOUNTD_SMS_URL`; unset means the file sink.
    pub sms_url: Option<String>,
    /// `ACCOUNTD_SERVICE_TOKENS`: (role, token) pairs.
    pub service_tokens: Vec<(String, String)>,
    /// `ACCOUNTD_IP_RATE_LIMIT`: requests a minute per client IP and public route; 0 is off.
    pub ip_rate_limit: u32,
    /// `ACCOUNTD_TRUSTED_PROXY_HEADER`: the header our proxy appends the client IP to; its
    /// right-most entry is taken (see `http::extract::client_of`).
    pub trusted_proxy_header: Option<String>,
    /// `ACCOUNTD_SECRET_KEY`; generated into the data folder on the embedded store.
    secret_key: Option<String>,
    /// `ACCOUNTD_PREVIOUS_SECRET_KEYS`: older keys, comma-separated, still accepted for opening
    /// sealed values after a rotation.
    previous_secret_keys: Vec<String>,
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any source of variables (tests pass a map). Empty values count as unset, except
    /// the stream prefix, which is taken verbatim.
    pub fn from_vars(source: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| source(name).filter(|v| !v.trim().is_empty());
        let bind = var("ACCOUNTD_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .context("ACCOUNTD_BIND must be host:port")?;
        let service_tokens = var("ACCOUNTD_SERVICE_TOKENS")
            .map(|v| {
                v.split(',')
                    .filter(|pair| !pair.trim().is_empty())
                    .map(|pair| {
                        let (role, token) = pair
                            .trim()
                            .split_once(':')
                            .context("ACCOUNTD_SERVICE_TOKENS must be role:token pairs")?;
                        anyhow::ensure!(
                            matches!(role, "compute" | "support" | "notifier" | "auditor"),
                            "unknown role {role} in ACCOUNTD_SERVICE_TOKENS"
                        );
                        anyhow::ensure!(
                            token.len() >= 16,
                            "service tokens must be at least 16 characters"
                        );
                        Ok((role.to_owned(), token.to_owned()))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            nats_url: var("NATS_URL"),
            nats_stream_prefix: source("ACCOUNTD_NATS_STREAM_PREFIX").unwrap_or_default(),
            nats_replicas: var("ACCOUNTD_NATS_REPLICAS")
                .map(|v| v.parse().context("ACCOUNTD_NATS_REPLICAS must be a number"))
                .transpose()?
                .unwrap_or(1),
            public_url: var("ACCOUNTD_PUBLIC_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
                .trim_end_matches('/')
                .to_owned(),
            smtp_url: var("ACCOUNTD_SMTP_URL"),
            smtp_from: var("ACCOUNTD_SMTP_FROM")
                .unwrap_or_else(|| "no-reply@accountd.local".to_owned()),
            sms_url: var("ACCOUNTD_SMS_URL"),
            service_tokens,
            ip_rate_limit: var("ACCOUNTD_IP_RATE_LIMIT")
                .map(|v| v.parse().context("ACCOUNTD_IP_RATE_LIMIT must be a number"))
                .transpose()?
                .unwrap_or(300),
            trusted_proxy_header: var("ACCOUNTD_TRUSTED_PROXY_HEADER"),
            bind,
            data_dir: var("ACCOUNTD_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("./data")),
            database_url: var("DATABASE_URL"),
            secret_key: var("ACCOUNTD_SECRET_KEY"),
            previous_secret_keys: var("ACCOUNTD_PREVIOUS_SECRET_KEYS")
                .map(|v| v.split(',').map(|k| k.trim().to_owned()).collect())
                .unwrap_or_default(),
        })
    }

    /// Opens the configured store (PostgreSQL when `DATABASE_URL` is set, else the embedded
    /// SQLite file in the data folder) and migrates it.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        let store = match &self.database_url {
            Some(url) => Store::connect_postgres(url, 32)
                .await
                .context("connecting to PostgreSQL (DATABASE_URL)")?,
            None => {
                private_dir(&self.data_dir).with_context(|| {
                    format!("creating the data folder {}", self.data_dir.display())
                })?;
                let path = self.data_dir.join("accountd.db");
                // SQLite gives its -wal and -shm files the mode of the database file.
                private_file(&path).with_context(|| format!("creating {}", path.display()))?;
                Store::open_sqlite(&path)
                    .await
                    .context("opening the embedded store")?
            }
        };
        store.migrate().await.context("migrating the store")?;
        Ok(store)
    }

    /// Opens the read side's own pool on the configured store (after [`Self::open_store`],
    /// which creates the data folder) and migrates it.
    pub async fn open_read_store(&self) -> anyhow::Result<projections::ReadStore> {
        let location = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("accountd.db").display()),
        };
        projections::ReadStore::open(&location)
            .await
            .context("opening the read store")
    }

    /// The keyring: `ACCOUNTD_SECRET_KEY`, or on the embedded store a key file generated into
    /// the data folder on first start. PostgreSQL deployments must configure the key.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        let current = match (&self.secret_key, &self.database_url) {
            (Some(key), _) => key.clone(),
            (None, Some(_)) => bail!("ACCOUNTD_SECRET_KEY is required with DATABASE_URL"),
            (None, None) => self.embedded_key()?,
        };
        let current = decode_key(&current).context("ACCOUNTD_SECRET_KEY")?;
        let older = self
            .previous_secret_keys
            .iter()
            .map(|k| decode_key(k).context("ACCOUNTD_PREVIOUS_SECRET_KEYS"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Keyring::new(current, older))
    }

    fn embedded_key(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join("secret.key");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().to_owned());
        }
        private_dir(&self.data_dir)?;
        let key = generate_key();
        write_private(&path, &key)?;
        tracing::info!(path = %path.display(), "generated a secret key for the embedded store");
        Ok(key)
    }
}

/// Creates `dir` (and its parents) if missing, and makes it its owner's alone (0700): the data
/// folder holds the events, the key and the outbox, which carry personal data and codes.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path` empty if missing, readable by its owner only (0600); an existing file is left
/// as it is.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).map(drop)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
